"""Screening of incoming messages, shared by every channel.

Rasa's NLU runs a transformer over the whole message, so an overlong message must
never reach it. The screen replaces such a message with an intent shortcut
(Rasa's ``/intent`` syntax, which skips NLU) — but a crisis anywhere in the text
still wins, as it does everywhere else.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import UserMessage
from sanic import Blueprint

from bot.safety import is_crisis
from bot.settings import get_settings

CRISIS = "/crisis"
TOO_LONG = "/message_too_long"
NOT_TEXT = "/non_text_message"

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


def screen(text: Any, *, max_chars: int) -> str:
    """The text Rasa should see for an incoming ``text``."""
    if not isinstance(text, str) or not text.strip():
        return NOT_TEXT
    if len(text) > max_chars:
        return CRISIS if is_crisis(text) else TOO_LONG
    return text


def screened(on_new_message: OnNewMessage, *, max_chars: int) -> OnNewMessage:
    """Wrap Rasa's message handler so every message is screened first."""

    async def handler(message: UserMessage) -> Any:
        message.text = screen(message.text, max_chars=max_chars)
        return await on_new_message(message)

    return handler


class Screened:
    """Mixin for one of Rasa's input channels: every message is screened before Rasa sees it."""

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        return super().blueprint(screened(on_new_message, max_chars=get_settings().message_max_chars))  # type: ignore[misc]
