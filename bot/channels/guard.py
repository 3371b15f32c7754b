"""Screening of incoming messages, shared by every channel.

* A patient's text is text: a leading ``/`` (Rasa's intent shortcut, ``/restart``,
  ``/greet{"x": 1}``) is removed, so typed text always goes through NLU and the crisis layer.
  Only a button press (the channel says so) whose payload is one of the domain's buttons
  keeps the shortcut.
* An overlong message gets a clear reply (with the emergency number and the crisis line)
  without NLU reading its whole text: only a bounded prefix reaches NLU, plus any later
  sentence in which a crisis pattern matches (the patterns read the whole message), marked
  ``screen: too_long`` in the message metadata. The crisis layer checks that text and a crisis
  there is answered first; anything else becomes ``message_too_long`` (bot/crisis/component.py).
* Non-text messages (photos, stickers, empty text) become ``/non_text_message``.
* A lone thumbs-up or thumbs-down (any skin tone) is feedback on the latest answer, on every
  channel: it becomes the rating buttons' payload (how SMS patients rate an answer).
* Text that is not valid Unicode (lone surrogates) is repaired, and client metadata is
  reduced to what the assistant uses.
* Rate limits (bot/channels/limits.py) are checked before any of that work: ``admit``.
* Sender ids a client chooses (REST) must be short and plain: ``valid_sender``; so must the
  message ids a client may give (``client_message_id``), with which it marks a message it sends
  again after a lost connection (``resend``: answered with the reply it already had).
* A turn that fails (the conversation store or the lock store unreachable) gets the apology
  with the clinic's number and the emergency number, never silence: ``deliver``.
"""
from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Awaitable, Callable, Dict, FrozenSet, Optional, TypeGuard

import yaml
from rasa.core.channels.channel import UserMessage

from bot.channels.limits import get_limits
from bot.crisis.patterns import load_patterns
from bot.ops.settings import PROJECT_ROOT, get_settings
from bot.answers.wording import APOLOGY_RESPONSES, clinic_text

logger = logging.getLogger(__name__)

NOT_TEXT = "/non_text_message"
SCREEN = "screen"  # metadata key read by the crisis layer
TOO_LONG = "too_long"
BUTTON = "button"  # metadata key a channel sets for a button press
RESEND = "resend"  # metadata key: the client sends this message (same message id) again

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
    topics = {f"/{intent}" for intent in domain.get("intents", []) if isinstance(intent, str)
              and intent.startswith("ask_") and intent != "ask_followup"}  # "Or did you mean" (bot/answers/assistant.py)
    return frozenset(
        str(button["payload"])
        for variants in domain.get("responses", {}).values()
        for variant in variants
        for button in variant.get("buttons") or ()
    ) | {GREET} | topics


def as_text(text: str) -> str:
    """Valid Unicode, no NUL characters, and never an intent shortcut."""
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")
    stripped = text.lstrip()
    if stripped.startswith("/"):
        text = stripped.lstrip("/").lstrip() or NOT_TEXT
    return text


_THUMB = re.compile(r"\s*(\U0001F44D|\U0001F44E)[\U0001F3FB-\U0001F3FF\uFE0F]*\s*")
THUMBS = {"\U0001F44D": "/feedback_up", "\U0001F44E": "/feedback_down"}


def thumbs(text: str) -> Optional[str]:
    """The feedback payload for a message that is only a 👍 or a 👎, else None."""
    match = _THUMB.fullmatch(text)
    return THUMBS[match.group(1)] if match else None


def screen(text: Any, *, max_chars: int, prefix_chars: Optional[int] = None, button: bool = False) -> Incoming:
    """The text (and metadata) Rasa should see for an incoming ``text``."""
    if not isinstance(text, str) or not text.strip():
        return Incoming(NOT_TEXT)
    if button and text in button_payloads():
        return Incoming(text)
    rating = thumbs(text)
    if rating:
        return Incoming(rating)
    if len(text) > max_chars:
        cut = max(prefix_chars or 0, max_chars)
        # The patterns read the whole message (from the sentence the prefix cuts through): a
        # passage around each match past the prefix is added to what the crisis layer reads, so
        # a crisis anywhere is answered first.
        boundary = max(text.rfind(mark, 0, cut) for mark in (". ", "? ", "! ", "\n"))
        flagged = load_patterns().flagged_sentences(text[max(boundary, 0):])
        return Incoming(as_text(" ".join([text[:cut]] + flagged)), {SCREEN: TOO_LONG})
    return Incoming(as_text(text))


def screen_message(message: UserMessage) -> UserMessage:
    """Screen a UserMessage in place, as every channel does before Rasa sees it."""
    settings = get_settings()
    button = (message.metadata or {}).get(BUTTON) is True
    incoming = screen(message.text, max_chars=settings.message_max_chars,
                      prefix_chars=settings.crisis_screen_chars, button=button)
    resend = bool(message.message_id) and (message.metadata or {}).get(RESEND) is True
    message.text = incoming.text
    message.metadata = {**incoming.metadata, **({RESEND: True} if resend else {})} or None
    return message


_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def client_message_id(value: Any) -> Optional[str]:
    """A message id a client chose (8-64 characters of A-Z a-z 0-9 _ -), or None."""
    return value if isinstance(value, str) and _MESSAGE_ID.fullmatch(value) else None


_SENDER = re.compile(r"[A-Za-z0-9._:@-]+")


def valid_sender(sender: Any) -> TypeGuard[str]:
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
                message.sender_id, clinic_text("utter_slow_down", message.input_channel or ""))
        return False
    return True


async def apologise(message: UserMessage, output: Any = None) -> None:
    """The apology (with the clinic's and the emergency number) and the disclaimer, sent
    without Rasa: for a turn that could not run."""
    output = output or message.output_channel
    if output is None:
        return
    try:
        for name in APOLOGY_RESPONSES:
            await output.send_text_message(message.sender_id, clinic_text(name, message.input_channel or ""))
    except Exception as error:  # noqa: BLE001 - nothing more can be done; the log says so
        logger.error("the apology could not be sent either (%s)", type(error).__name__,
                     extra={"channel": message.input_channel})


async def deliver(message: UserMessage, on_new_message: OnNewMessage, *, address: Optional[str] = None,
                  apology_output: Any = None) -> bool:
    """One incoming message, as every patient channel handles it: rate limits, screening, the
    turn - and when the turn fails, the apology instead of silence (``apology_output``: where
    to send it when the usual way is what failed). True when the turn ran."""
    try:
        if not await admit(message, address=address):
            return False
        await on_new_message(screen_message(message))
        return True
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001 - the patient gets the apology, the log the reason
        logger.error("a turn failed (%s); the patient gets the apology", type(error).__name__,
                     extra={"channel": message.input_channel})
        await apologise(message, apology_output)
        return False
