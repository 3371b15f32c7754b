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
* Rate limits (bot/channels/limits.py) are checked before any of that work: ``admit``.
* Sender ids a client chooses (REST) must be short and plain: ``valid_sender``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Awaitable, Callable, Dict, FrozenSet, Optional

import yaml
from rasa.core.channels.channel import UserMessage

from bot.channels.limits import get_limits
from bot.settings import PROJECT_ROOT, get_settings
from bot.wording import response_text

logger = logging.getLogger(__name__)

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


GREET = "/greet"  # the web widget says hello for the patient when the chat is opened


@lru_cache(maxsize=1)
def button_payloads() -> FrozenSet[str]:
    """Every button payload the domain offers (and the widget's greeting): the only shortcuts a
    button press may send."""
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return frozenset(
        str(button["payload"])
        for variants in domain.get("responses", {}).values()
        for variant in variants
        for button in variant.get("buttons") or ()
    ) | {GREET}


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


_SENDER = re.compile(r"[A-Za-z0-9._:@-]+")


def valid_sender(sender: Any) -> bool:
    """A conversation id chosen by a client: 1 to SENDER_MAX_CHARS characters of A-Z a-z 0-9 . _ : @ -"""
    return (isinstance(sender, str) and 0 < len(sender) <= get_settings().sender_max_chars
            and _SENDER.fullmatch(sender) is not None)


async def admit(message: UserMessage, *, address: Optional[str] = None) -> bool:
    """Rate limits for this message's client address and sender, before any other work. On the
    first refusal in a row the patient is asked to slow down (later ones are dropped silently)."""
    limits = get_limits()
    for decision in (limits.for_address(address), limits.for_sender(message.input_channel or "", message.sender_id)):
        if decision.allowed:
            continue
        logger.warning("rate limit: a message was refused", extra={"channel": message.input_channel})
        if decision.first_refusal and message.output_channel is not None:
            await message.output_channel.send_text_message(
                message.sender_id, response_text("utter_slow_down", message.input_channel or ""))
        return False
    return True
