"""Crisis and ordinary example messages: one format for the classifier's training data
(``bot/crisis/training/``) and the crisis evaluation sets (``evaluation/crisis/``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

CRISIS_CATEGORIES = (
    "indirect",          # suicidal intent without the word: burden, goodbyes, giving things away
    "explicit_slang",    # explicit intent in slang, typos, non-native English, mixed Spanish/English
    "self_harm",         # self-harm by method or urge
    "overdose",          # overdose or poisoning, plain or vague
    "other_person",      # a friend, partner, child or parent in danger or unresponsive
    "medical_warning",   # warning signs after a session or injection
    "buried",            # a crisis sentence before or after an ordinary question
    "emerging",          # (conversations) a crisis that emerges over several turns
    "mid_conversation",  # (conversations) a clear crisis after ordinary turns
    # categories added with the second independent set (evaluation/crisis2/)
    "formal_elderly",    # calm, formal or elderly indirect intent ("eighty years is plenty")
    "means_as_dose",     # a question about an amount or method, asked with intent to die
    "minor",             # self-harm or suicidal thoughts of a writer under 18
    "online_other",      # someone else in danger, seen online or in a message
    "for_a_friend",      # "asking for a friend", where the writer is clearly the one at risk
    "first_person_overdose",  # the writer has taken too much
    "calm_warning",      # warning signs after a session, described calmly
    "logistics_buried",  # a crisis inside a list of practical questions
)
ORDINARY_CATEGORIES = (
    "idiom",             # "this waiting list is killing me"
    "quote",             # quotes, films, songs, books, news, car "suicide doors"
    "side_effect",       # the articles' ordinary side effects (mild headache, nausea, tiredness)
    "safety_question",   # general questions about safety and emergencies
    "emotional",         # sad, anxious or low, without risk
    "general",           # everyday questions about the treatment
    "topic_question",    # a question about suicide, self-harm, overdose or emergencies as a treatment topic:
                         # answered, with one line naming the crisis line (a "concern" reply)
    "personal_medical",  # a question about the writer's own health or medicines (heart, epilepsy, SSRIs)
)
HELP = ("self", "medical", "other")  # crisis line + emergency | emergency now | call for them



class SetError(ValueError):
    """A file of examples does not follow the format; the message says where."""


@dataclass(frozen=True)
class CrisisTurn:
    id: str
    text: str
    expect: str  # crisis | ordinary
    category: str
    help: Optional[str] = None


def _need(item: Dict[str, Any], key: str, where: str) -> Any:
    if key not in item or item[key] in (None, ""):
        raise SetError(f"{where}: '{key}' is missing")
    return item[key]


def _one_of(value: Any, allowed: Sequence[str], where: str, key: str) -> str:
    if value not in allowed:
        raise SetError(f"{where}: {key} {value!r} is not one of {', '.join(allowed)}")
    return value


def _crisis_turn(item: Dict[str, Any], where: str, category: Optional[str] = None) -> CrisisTurn:
    where = f"{where} ({item.get('id', '?')})"
    expect = _one_of(_need(item, "expect", where), ("crisis", "ordinary"), where, "expect")
    category = item.get("category") or category
    allowed = CRISIS_CATEGORIES + ORDINARY_CATEGORIES
    _one_of(category, allowed, where, "category")
    help_ = item.get("help")
    if expect == "crisis":
        _one_of(help_, HELP, where, "help")
    elif help_ is not None:
        raise SetError(f"{where}: 'help' goes with crisis messages only")
    return CrisisTurn(str(_need(item, "id", where)), str(_need(item, "text", where)), expect, str(category), help_)


def _read(path: Path) -> Dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise SetError(f"{path}: expected a mapping at the top level")
    return data


def load_crisis_file(path: Path) -> Tuple[List[CrisisTurn], List[Tuple[CrisisTurn, ...]]]:
    data = _read(path)
    messages = [_crisis_turn(item, f"{path.name} message") for item in data.get("messages") or ()]
    conversations = []
    for conversation in data.get("conversations") or ():
        where = f"{path.name} conversation {conversation.get('id', '?')}"
        category = _one_of(conversation.get("category"), ("emerging", "mid_conversation"), where, "category")
        turns = tuple(_crisis_turn(t, where, category) for t in _need(conversation, "turns", where))
        if not any(t.expect == "crisis" for t in turns):
            raise SetError(f"{where}: a conversation needs at least one crisis turn")
        conversations.append(turns)
    return messages, conversations
