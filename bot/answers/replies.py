"""What the assistant says, as domain response names plus their values.

Patient-facing wording lives in ``domain.yml`` (templates) and the knowledge
base (facts); this module only chooses templates and fills their slots.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple

from bot.knowledge import FactRecord

DISCLAIMER_RESPONSE = "utter_disclaimer"
# The same disclaimer with thumbs up / down: under the replies a patient can rate.
RATED_DISCLAIMER_RESPONSE = "utter_disclaimer_rate"
DISCLAIMERS = (DISCLAIMER_RESPONSE, RATED_DISCLAIMER_RESPONSE)
# One line with the crisis line, under the answer to a message that names suicide, self-harm or
# overdose as a subject without being a crisis (bot/crisis/: a "concern").
CONCERN_RESPONSE = "utter_crisis_concern"
RATED_KINDS = ("answer", "answers", "comparison", "search", "advice", "clinic")


@dataclass(frozen=True)
class Message:
    """One bot message: a response in domain.yml and the values for its placeholders."""

    response: str
    values: Mapping[str, Any] = field(default_factory=dict)  # text, or the buttons' list


@dataclass(frozen=True)
class Reply:
    """Everything the assistant decided for one turn, for sending and for explaining."""

    kind: str  # answer | comparison | search | clinic | fallback | out_of_scope | crisis | advice | greeting
    messages: Tuple[Message, ...]
    topic: Optional[str] = None
    routes: Tuple[str, ...] = ()
    facts: Tuple[FactRecord, ...] = ()
    search_score: Optional[float] = None


def outgoing(reply: Reply, *, concern: bool = False) -> Tuple[Message, ...]:
    """The messages to send for ``reply``.

    This is the one place the "not medical advice" disclaimer is added: every
    reply the assistant composes (answers, fallbacks, crisis, advice, greeting)
    goes out through here and ends with it. An answer the patient can rate ends with the
    disclaimer that carries the thumbs up / down. ``concern``: the crisis layer found the
    message names suicide, self-harm or overdose as a subject; the crisis line goes before the
    disclaimer, whatever the reply is.
    """
    extra = (Message(CONCERN_RESPONSE),) if concern and reply.kind != "crisis" else ()
    return reply.messages + extra + (Message(RATED_DISCLAIMER_RESPONSE if rated(reply) else DISCLAIMER_RESPONSE),)


def rated(reply: Reply) -> bool:
    return reply.kind in RATED_KINDS
