"""Recording turns and feedback as they happen (called by the actions and the Rasa server).

Recording never costs a patient their answer: a records database that fails is logged (by
error type only) and the conversation goes on.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

from bot.answers.replies import Reply
from bot.ops.settings import get_settings
from bot.staff.records import KINDS, REPLY_KINDS, TurnRecord, conversation_key, get_record_store
from bot.staff.scrub import scrub

logger = logging.getLogger(__name__)
Result = TypeVar("Result")

# One thread writes every record of this process, in the order the turns asked: the event loop
# goes on serving other patients during a write (a commit waits for the disk), and a thumbs-up
# still finds the answer it rates, written before it.
_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="records")


async def off_the_loop(write: Callable[..., Result], **kwargs: Any) -> Result:
    """``write(**kwargs)`` on the records thread, awaited without blocking the event loop, in the
    caller's context (explain mode's records go elsewhere: bot.staff.records.records_elsewhere)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        _WRITER, functools.partial(context.run, functools.partial(write, **kwargs)))


# Domain responses of the feedback exchange.
THANKS = "utter_feedback_thanks"  # after a thumbs-up
ASK = "utter_feedback_ask"  # after a thumbs-down: "What were you looking for?" (optional)
NOTED = "utter_feedback_noted"  # the patient answered that question
NOTHING_TO_RATE = "utter_feedback_nothing"


@dataclass(frozen=True)
class Turn:
    """The patient's side of one turn, as the action server sees it."""

    sender_id: str
    channel: str
    text: str
    intent: Optional[str]
    confidence: Optional[float]
    message_id: Optional[str]


def is_unanswered(turn: Turn, reply: Reply) -> bool:
    """A turn whose words staff need: not understood, out of scope, or under the confidence
    threshold (never a personal-advice message, which may carry the patient's own details)."""
    kind = REPLY_KINDS.get(reply.kind, reply.kind)
    if kind in ("advice", "crisis") or kind not in KINDS:
        return False
    return kind in ("fallback", "decline") or low_confidence(turn)


def low_confidence(turn: Turn) -> bool:
    return turn.confidence is not None and turn.confidence < get_settings().records_low_confidence


def record_reply(*, turn: Turn, reply: Reply) -> Optional[str]:
    """Record a knowledge turn (greetings and the like are not recorded); its record id."""
    kind = REPLY_KINDS.get(reply.kind, reply.kind)
    if kind not in KINDS or kind == "crisis":
        return None
    keep_text = is_unanswered(turn, reply)
    try:
        record = TurnRecord(conversation=conversation_key(turn.sender_id), channel=turn.channel or "unknown",
                            kind=kind, intent=turn.intent, confidence=turn.confidence,
                            low_confidence=low_confidence(turn),
                            topic=reply.topic, route=reply.routes[0] if len(reply.routes) == 1 else None,
                            facts=tuple(fact.id for fact in reply.facts),
                            question=scrub(turn.text) if keep_text and turn.text else None,
                            message_id=turn.message_id)
        get_record_store().add(record=record)
        return record.id
    except Exception as error:  # noqa: BLE001 - the patient's answer matters more than the record
        logger.error("records: a turn could not be recorded (%s)", type(error).__name__)
        return None


def record_crisis(*, sender_id: str, channel: str, intent: Optional[str]) -> None:
    """A crisis turn: counted (conversation, channel, time, which kind), never its text."""
    try:
        get_record_store().add(record=TurnRecord(conversation=conversation_key(sender_id), channel=channel or "unknown",
                                                 kind="crisis", intent=intent))
    except Exception as error:  # noqa: BLE001
        logger.error("records: a crisis turn could not be counted (%s)", type(error).__name__)


def rate_latest(*, sender_id: str, value: int, text_of: Callable[[str], Optional[str]]) -> str:
    """Thumbs up (1) or down (-1) for the conversation's latest rated answer; the response to
    send. A thumbs-down keeps the (scrubbed) question it was about: ``text_of(message_id)``."""
    try:
        store = get_record_store()
        conversation = conversation_key(sender_id)
        latest = store.latest_rated(conversation=conversation)
        if latest is None:
            return NOTHING_TO_RATE
        question = None
        if value < 0 and latest.message_id:
            original = text_of(latest.message_id)
            question = scrub(original) if original else None
        store.rate(record_id=latest.id, conversation=conversation, value=value, question=question)
    except Exception as error:  # noqa: BLE001
        logger.error("records: feedback could not be recorded (%s)", type(error).__name__)
    return THANKS if value > 0 else ASK


def note_followup(*, sender_id: str, text: str) -> bool:
    """The patient's answer to "What were you looking for?", kept (scrubbed) with the thumbs-down."""
    try:
        return get_record_store().add_followup(conversation=conversation_key(sender_id), text=scrub(text))
    except Exception as error:  # noqa: BLE001
        logger.error("records: a follow-up could not be recorded (%s)", type(error).__name__)
        return False
