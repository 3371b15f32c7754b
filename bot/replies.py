"""What the assistant says, as domain response names plus their values.

Patient-facing wording lives in ``domain.yml`` (templates) and the knowledge
base (facts); this module only chooses templates and fills their slots.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

from bot.knowledge import FactRecord

DISCLAIMER_RESPONSE = "utter_disclaimer"


@dataclass(frozen=True)
class Message:
    """One bot message: a response in domain.yml and the values for its placeholders."""

    response: str
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """Everything the assistant decided for one turn, for sending and for explaining."""

    kind: str  # answer | comparison | search | fallback | out_of_scope | crisis | advice | greeting
    messages: Tuple[Message, ...]
    topic: Optional[str] = None
    routes: Tuple[str, ...] = ()
    facts: Tuple[FactRecord, ...] = ()
    search_score: Optional[float] = None


def outgoing(reply: Reply) -> Tuple[Message, ...]:
    """The messages to send for ``reply``.

    This is the one place the "not medical advice" disclaimer is added: every
    reply the assistant composes (answers, fallbacks, crisis, advice, greeting)
    goes out through here and ends with it.
    """
    return reply.messages + (Message(DISCLAIMER_RESPONSE),)
