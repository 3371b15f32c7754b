"""Rasa's REST channel with the same message screening as the patient channels."""
from __future__ import annotations

from typing import Text

from rasa.core.channels.rest import RestInput
from sanic import Blueprint

from bot.channels.guard import OnNewMessage, screened
from bot.settings import get_settings


class ScreenedRestInput(RestInput):
    """``bot.channels.rest.ScreenedRestInput`` in credentials.yml (still /webhooks/rest/webhook)."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        return super().blueprint(screened(on_new_message, max_chars=get_settings().message_max_chars))
