"""Scoring the patient sets (evaluation/patients/{dev,locked}) against the running assistant.

Independent of wording and of the project's topics: a question names the article sentences a
correct answer draws on, and a reply is correct when, for every question in the message, it
carries a knowledge-base fact that restates one of those sentences (the coverage map in
knowledge/facts) about the route asked - both routes when the question compares them or names
neither. A decline must say it cannot answer and carry no figure the knowledge base does not
have; advice must refer the patient to their clinician.

For the locked part only counts leave this module.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from bot.evaluation.scoring import Observed, Scorer
from bot.evaluation.sets import Ask, PatientSet, PatientTurn
from bot.knowledge import FactRecord

Say = Callable[[str, str], Iterable[str]]
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class PatientVerdict:
    turn: PatientTurn
    correct: bool
    replied: str  # answer | decline | advice | crisis | other
    asks_answered: int
    invented_figure: bool
    disclaimer: bool
    facts: tuple = ()  # ids of the facts the reply carried (for error analysis)


def answers(ask: Ask, facts: Sequence[FactRecord]) -> bool:
    """Does a reply carrying ``facts`` answer ``ask``?"""
    hits = [f for f in facts if set(f.restates) & set(ask.sentences)]
    if not hits:
        return False
    if ask.route == "both":
        return {"iv", "im"} <= {r for f in facts for r in f.routes}
    return ask.route in {r for f in hits for r in f.routes}


def replied_kind(observed: Observed) -> str:
    kinds = observed.kinds
    if "crisis" in kinds:
        return "crisis"
    if "advice" in kinds:
        return "advice"
    if observed.facts:
        return "answer"
    if "fallback" in kinds:
        return "decline"
    return "other"


def judge_patient(turn: PatientTurn, observed: Observed, texts: Sequence[str], *, known_figures: set) -> PatientVerdict:
    replied = replied_kind(observed)
    answered = sum(answers(ask, observed.facts) for ask in turn.asks)
    figures = {n for text in texts for n in _NUMBER.findall(text)}
    invented = bool(figures - known_figures)
    if turn.expect == "answer":
        correct = replied == "answer" and answered == len(turn.asks)
    elif turn.expect == "decline":
        correct = replied == "decline" and not invented
    else:
        correct = replied == "advice"
    return PatientVerdict(turn, correct, replied, answered, invented, observed.has_disclaimer,
                          tuple(f.id for f in observed.facts))


def known_figures(facts: Sequence[FactRecord], clinic_values: Dict[str, str]) -> set:
    """Every number the assistant may say: the knowledge base's and the clinic's own."""
    texts = [f.text for f in facts] + list(clinic_values.values())
    return {n for text in texts for n in _NUMBER.findall(text)}


def run_patient_set(dataset: PatientSet, *, say: Say, scorer: Scorer, figures: set, prefix: str) -> List[PatientVerdict]:
    verdicts = []
    for number, turn in enumerate(dataset.messages):
        texts = list(say(f"{prefix}-m{number}", turn.text))
        verdicts.append(judge_patient(turn, scorer.observe(texts), texts, known_figures=figures))
    for number, conversation in enumerate(dataset.conversations):
        for turn in conversation:
            texts = list(say(f"{prefix}-c{number}", turn.text))
            verdicts.append(judge_patient(turn, scorer.observe(texts), texts, known_figures=figures))
    return verdicts


def _rate(hits: int, total: int) -> Optional[float]:
    return round(hits / total, 4) if total else None


def patient_metrics(verdicts: List[PatientVerdict], *, with_texts: bool) -> Dict[str, object]:
    by = lambda expect: [v for v in verdicts if v.turn.expect == expect]  # noqa: E731
    answer, decline, advice = by("answer"), by("decline"), by("advice")
    declined = [v for v in verdicts if v.replied == "decline"]
    per_voice: Dict[str, List[bool]] = defaultdict(list)
    for verdict in answer:
        per_voice[verdict.turn.voice].append(verdict.correct)
    two = [v for v in answer if len(v.turn.asks) == 2]
    result: Dict[str, object] = {
        "turns": len(verdicts),
        "counts": {"answer": len(answer), "decline": len(decline), "advice": len(advice)},
        "answers_correct": _rate(sum(v.correct for v in answer), len(answer)),
        "in_scope_to_fallback": _rate(sum(v.replied == "decline" for v in answer), len(answer)),
        "two_questions_both_answered": _rate(sum(v.correct for v in two), len(two)),
        "declines": _rate(sum(v.correct for v in decline), len(decline)),
        "decline_precision": _rate(sum(v.turn.expect == "decline" for v in declined), len(declined)),
        "invented_figures": sum(v.invented_figure for v in verdicts),
        "advice_referrals": _rate(sum(v.correct for v in advice), len(advice)),
        "disclaimer": _rate(sum(v.disclaimer for v in verdicts), len(verdicts)),
        "per_voice": {voice: _rate(sum(c), len(c)) for voice, c in sorted(per_voice.items())},
    }
    if with_texts:
        result["failures"] = [
            {"id": v.turn.id, "voice": v.turn.voice, "expect": v.turn.expect, "replied": v.replied,
             "asks": [{"sentences": list(a.sentences), "route": a.route} for a in v.turn.asks],
             "answered": v.asks_answered, "facts": list(v.facts), "text": v.turn.text}
            for v in verdicts if not v.correct
        ]
    return result


def baseline_patients(dataset: PatientSet, *, best_fact: Callable[[str], Optional[FactRecord]]) -> Optional[float]:
    """A search baseline on the single messages that expect an answer: correct when the top fact
    restates a sentence the message's first question asks about, for the route asked."""
    items = [t for t in dataset.messages if t.expect == "answer"]
    hits = 0
    for turn in items:
        fact, ask = best_fact(turn.text), turn.asks[0]
        hits += fact is not None and bool(set(fact.restates) & set(ask.sentences)) and (
            ask.route == "both" or ask.route in fact.routes)
    return _rate(hits, len(items))
