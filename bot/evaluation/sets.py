"""The independent evaluation sets, written apart from the training data.

Two families, each split into a ``dev`` part (read for error analysis) and a
``locked`` part (never read while fixing; only its aggregate figures appear in
the report):

* ``evaluation/patients/{dev,locked}/*.yml`` - patient messages in many voices.
  Each message names what a correct reply must contain: ``answer`` (one entry in
  ``asks`` per question in the message, each naming the article sentences a
  correct answer draws on and the route asked about), ``decline`` (the articles
  do not answer it) or ``advice`` (a question about the patient's own care).
* ``evaluation/crisis/{dev,locked}/*.yml`` - crisis and emergency messages by
  category, with the kind of help they need, and ordinary messages (idioms,
  quotes, ordinary side effects, safety questions) that must not raise an alarm.

Article sentence ids (``klearwell:22``) come from ``bot.knowledge.articles``.
``python -m bot.evaluation.sets check FILE...`` validates files (no Rasa needed).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from bot.crisis.examples import (  # noqa: F401 - the crisis sets share the classifier's format
    CRISIS_CATEGORIES,
    HELP,
    ORDINARY_CATEGORIES,
    CrisisTurn,
    SetError,
    _need,
    _one_of,
    _read,
    load_crisis_file,
)
from bot.ops.settings import PROJECT_ROOT

EVALUATION_DIR = PROJECT_ROOT / "evaluation"
PARTS = ("dev", "locked")

PATIENT_EXPECT = ("answer", "decline", "advice")
ROUTES_ASKED = ("iv", "im", "both")
VOICES = (
    "long_story", "texting", "non_native", "british_australian", "anxious",
    "third_person", "terse", "multi_part", "follow_up",
)

# --- patient messages -------------------------------------------------------------------

@dataclass(frozen=True)
class Ask:
    sentences: Tuple[str, ...]
    route: str
    compare: bool = False


@dataclass(frozen=True)
class PatientTurn:
    id: str
    text: str
    expect: str
    voice: str
    asks: Tuple[Ask, ...] = ()
    gist: str = ""


@dataclass(frozen=True)
class PatientSet:
    part: str
    messages: Tuple[PatientTurn, ...]
    conversations: Tuple[Tuple[PatientTurn, ...], ...]

    @property
    def turns(self) -> Tuple[PatientTurn, ...]:
        return self.messages + tuple(t for c in self.conversations for t in c)


# --- crisis messages ---------------------------------------------------------------------

@dataclass(frozen=True)
class CrisisSet:
    part: str
    messages: Tuple[CrisisTurn, ...]
    conversations: Tuple[Tuple[CrisisTurn, ...], ...]

    @property
    def turns(self) -> Tuple[CrisisTurn, ...]:
        return self.messages + tuple(t for c in self.conversations for t in c)


def _patient_turn(item: Dict[str, Any], where: str, sentence_ids: Optional[set], voice: Optional[str]) -> PatientTurn:
    where = f"{where} ({item.get('id', '?')})"
    expect = _one_of(_need(item, "expect", where), PATIENT_EXPECT, where, "expect")
    asks = []
    for ask in item.get("asks") or ():
        sentences = tuple(str(s) for s in _need(ask, "sentences", where))
        if sentence_ids is not None:
            unknown = [s for s in sentences if s not in sentence_ids]
            if unknown:
                raise SetError(f"{where}: unknown article sentence ids {unknown}")
        asks.append(Ask(sentences, _one_of(_need(ask, "route", where), ROUTES_ASKED, where, "route"),
                        bool(ask.get("compare", False))))
    if expect == "answer" and not asks:
        raise SetError(f"{where}: an 'answer' needs at least one entry in 'asks'")
    if len(asks) > 2:
        raise SetError(f"{where}: at most two questions per message")
    return PatientTurn(
        id=str(_need(item, "id", where)),
        text=str(_need(item, "text", where)),
        expect=expect,
        voice=_one_of(item.get("voice") or voice, VOICES, where, "voice"),
        asks=tuple(asks),
        gist=str(item.get("gist", "")),
    )


def load_patient_file(path: Path, *, sentence_ids: Optional[set] = None
                      ) -> Tuple[List[PatientTurn], List[Tuple[PatientTurn, ...]]]:
    data = _read(path)
    messages = [_patient_turn(item, f"{path.name} message", sentence_ids, None) for item in data.get("messages") or ()]
    conversations = []
    for conversation in data.get("conversations") or ():
        where = f"{path.name} conversation {conversation.get('id', '?')}"
        turns = tuple(_patient_turn(t, where, sentence_ids, conversation.get("voice"))
                      for t in _need(conversation, "turns", where))
        if not 2 <= len(turns) <= 4:
            raise SetError(f"{where}: a conversation has 2 to 4 turns")
        conversations.append(turns)
    return messages, conversations


def _sentence_ids() -> set:
    from bot.knowledge.articles import article_sentences

    return {s.id for s in article_sentences() if not s.heading}


def load_patient_set(part: str, root: Path = EVALUATION_DIR) -> PatientSet:
    ids = _sentence_ids()
    messages: List[PatientTurn] = []
    conversations: List[Tuple[PatientTurn, ...]] = []
    for path in sorted((root / "patients" / part).glob("*.yml")):
        m, c = load_patient_file(path, sentence_ids=ids)
        messages += m
        conversations += c
    return PatientSet(part, tuple(messages), tuple(conversations))


CRISIS_FAMILIES = ("crisis", "crisis2")  # the first independent crisis set, and the second (issue 18)


def load_crisis_set(part: str, root: Path = EVALUATION_DIR, *, family: str = "crisis") -> CrisisSet:
    messages: List[CrisisTurn] = []
    conversations: List[Tuple[CrisisTurn, ...]] = []
    for path in sorted((root / family / part).glob("*.yml")):
        m, c = load_crisis_file(path)
        messages += m
        conversations += c
    return CrisisSet(part, tuple(messages), tuple(conversations))


def check(paths: Sequence[str]) -> int:
    """Validate files and print counts (never their contents)."""
    status = 0
    for name in paths:
        path = Path(name)
        try:
            if any(part in CRISIS_FAMILIES for part in path.parts):
                messages, conversations = load_crisis_file(path)
                turns = list(messages) + [t for c in conversations for t in c]
                counts: Dict[str, int] = {}
                for t in turns:
                    key = f"{t.expect}/{t.category}"
                    counts[key] = counts.get(key, 0) + 1
            else:
                messages, conversations = load_patient_file(path, sentence_ids=_sentence_ids())
                turns = list(messages) + [t for c in conversations for t in c]
                counts = {}
                for t in turns:
                    key = f"{t.expect}/{t.voice}"
                    counts[key] = counts.get(key, 0) + 1
            ids = [t.id for t in turns]
            if len(ids) != len(set(ids)):
                raise SetError(f"{path}: ids are not unique")
            print(f"{path}: OK, {len(messages)} messages, {len(conversations)} conversations, {len(turns)} turns")
            for key, count in sorted(counts.items()):
                print(f"  {key}: {count}")
        except (SetError, KeyError, TypeError, yaml.YAMLError) as error:
            print(f"{path}: ERROR {error}")
            status = 1
    return status


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "check":
        print("usage: python -m bot.evaluation.sets check FILE...", file=sys.stderr)
        sys.exit(2)
    sys.exit(check(sys.argv[2:]))
