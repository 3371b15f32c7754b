"""Screening of incoming messages, shared by every channel.

* A patient's text is text: a leading ``/`` (Rasa's intent shortcut, ``/restart``,
  ``/greet{"x": 1}``) is removed, so typed text always goes through NLU and the crisis layer.
  Only a button press (the channel says so) whose payload is one of the domain's buttons
  keeps the shortcut.
* An overlong message gets a clear reply without its whole text being read: only a bounded
  prefix reaches NLU, marked ``screen: too_long`` in the message metadata. The crisis layer
  still checks that prefix and a crisis there is answered first; anything else becomes
  ``message_too_long`` (bot/crisis/component.py).
* Non-text messages (photos, stickers, empty text) become ``/non_text_message``.
* Text that is not valid Unicode (lone surrogates) is repaired, and client metadata is
  reduced to what the assistant uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Awaitable, Callable, Dict, FrozenSet, Optional

import yaml
from rasa.core.channels.channel import UserMessage
from sanic import Blueprint

from bot.settings import PROJECT_ROOT, get_settings

NOT_TEXT = "/non_text_message"
SCREEN = "screen"  # metadata key read by the crisis layer
TOO_LONG = "too_long"
BUTTON = "button"  # metadata key a channel sets for a button press

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


@dataclass(frozen=True)
class Incoming:
    """What Rasa gets for one incoming message."""

    text: str
    metadata: Dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def button_payloads() -> FrozenSet[str]:
    """Every button payload the domain offers: the only shortcuts a button press may send."""
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return frozenset(
        str(button["payload"])
        for variants in domain.get("responses", {}).values()
        for variant in variants
        for button in variant.get("buttons") or ()
    )


def as_text(text: str) -> str:
    """Valid Unicode, no NUL characters, and never an intent shortcut."""
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")
    stripped = text.lstrip()
    if stripped.startswith("/"):
        text = stripped.lstrip("/").lstrip() or NOT_TEXT
    return text


def screen(text: Any, *, max_chars: int, prefix_chars: Optional[int] = None, button: bool = False) -> Incoming:
    """The text (and metadata) Rasa should see for an incoming ``text``."""
    if not isinstance(text, str) or not text.strip():
        return Incoming(NOT_TEXT)
    if button and text in button_payloads():
        return Incoming(text)
    if len(text) > max_chars:
        prefix = text[: max(prefix_chars or 0, max_chars)]
        return Incoming(as_text(prefix), {SCREEN: TOO_LONG})
    return Incoming(as_text(text))


def screen_message(message: UserMessage) -> UserMessage:
    """Screen a UserMessage in place, as every channel does before Rasa sees it."""
    settings = get_settings()
    button = (message.metadata or {}).get(BUTTON) is True
    incoming = screen(message.text, max_chars=settings.message_max_chars,
                      prefix_chars=settings.crisis_screen_chars, button=button)
    message.text = incoming.text
    message.metadata = incoming.metadata or None
    return message


def screened(on_new_message: OnNewMessage) -> OnNewMessage:
    """Wrap Rasa's message handler so every message is screened first."""

    async def handler(message: UserMessage) -> Any:
        return await on_new_message(screen_message(message))

    return handler


class Screened:
    """Mixin for one of Rasa's input channels: every message is screened before Rasa sees it."""

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        return super().blueprint(screened(on_new_message))  # type: ignore[misc]
