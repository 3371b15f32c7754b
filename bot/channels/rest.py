"""Rasa's REST channel (/webhooks/rest/webhook) with the same message screening as the patient channels."""
from __future__ import annotations

from rasa.core.channels.rest import RestInput

from bot.channels.guard import Screened


class ScreenedRestInput(Screened, RestInput):
    """``bot.channels.rest.ScreenedRestInput`` in credentials.yml."""
