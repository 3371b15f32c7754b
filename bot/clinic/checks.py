"""Content checks on a clinic answer before it can be approved.

Refusals (the answer cannot be approved until they are gone): a dose figure (mg, mg/kg, ml, ...)
and a personal instruction ("you should take / stop ..."): a dose or an instruction is the
clinician's, for one patient, never the assistant's. Warnings (the reviewer must confirm them):
a figure of the same kind as one in the articles - a percentage or a duration - in a sentence
about the same thing, that differs from every article figure there ("IM lasts 3 hours" where
the articles say 30 to 45 minutes).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from bot.knowledge.records import FactRecord

_NUMBER = r"\d+(?:[.,]\d+)?"
_DOSE = re.compile(
    rf"\b{_NUMBER}(?:\s*(?:-|–|to)\s*{_NUMBER})?\s*(?:mg|mcg|µg|ug|g|ml|cc|iu|units?)\b(?:\s*/\s*kg)?"
    r"|\b(?:milligrams?|micrograms?|millilit(?:er|re)s?|mg\s*/\s*kg|mcg\s*/\s*kg|per\s+kilo(?:gram)?s?\s+of\s+body)\b",
    re.I)
_MEDICINE_VERBS = (r"take|stop|start|skip|miss|increase|decrease|reduce|double|halve|lower|raise|switch|come\s+off|"
                   r"keep\s+taking|stop\s+taking|avoid\s+taking|change")
_PERSONAL = re.compile(
    rf"\byou\s+(?:should|must|need\s+to|have\s+to|ought\s+to|will\s+need\s+to|are\s+to)\s+(?:not\s+)?"
    rf"(?:\w+\s+)?(?:{_MEDICINE_VERBS})\b"
    rf"|(?:^|[.!?]\s*|\b(?:please|just|then)\s+)(?:don'?t\s+|do\s+not\s+)?(?:{_MEDICINE_VERBS})\s+(?:taking\s+)?your\b"
    rf"|\b(?:stop|start|keep)\s+taking\s+your\b",
    re.I)
_PERCENT = re.compile(rf"({_NUMBER})(?:\s*(?:-|–|to)\s*({_NUMBER}))?\s*(?:%|per\s*cent|percent)", re.I)
_DURATION = re.compile(
    rf"\b({_NUMBER}|an?|one)(?:\s*(?:-|–|to)\s*({_NUMBER}))?\s*(seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?)\b",
    re.I)
_MINUTES = {"sec": 1 / 60, "min": 1, "hou": 60, "hrs": 60, "hr": 60, "day": 1440, "wee": 10080}
_STOP = frozenset("about after also around because been before being both does each from have into just like more most "
                  "much only other over same some such than that their them then there these they this very what when "
                  "which while will with within without would your ketamine clinic second seconds minute minutes hour hours "
                  "days week weeks percent".split())


@dataclass(frozen=True)
class Finding:
    kind: str  # "dose", "personal" (refusals) or "contradiction" (a warning)
    text: str  # what was found in the answer
    detail: str = ""  # for a contradiction: the article fact it differs from, and its source


@dataclass(frozen=True)
class CheckResult:
    refusals: Tuple[Finding, ...]
    warnings: Tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.refusals


def refusals(text: str) -> Tuple[Finding, ...]:
    """What makes an answer impossible to approve: dose figures and personal instructions."""
    found = [Finding("dose", m.group(0).strip()) for m in _DOSE.finditer(text)]
    found += [Finding("personal", m.group(0).strip(" .!?")) for m in _PERSONAL.finditer(text)]
    return tuple(found)


def _figures(sentence: str) -> List[Tuple[str, str, float, float]]:
    """(kind, the words, low, high) of each percentage and duration (in minutes) in a sentence."""
    found = []
    for match in _PERCENT.finditer(sentence):
        low = float(match.group(1).replace(",", "."))
        found.append(("percent", match.group(0), low, float((match.group(2) or match.group(1)).replace(",", "."))))
    for match in _DURATION.finditer(sentence):
        first = match.group(1).lower()
        unit = _MINUTES[match.group(3).lower()[:3]] if match.group(3).lower()[:3] in _MINUTES else 1
        low = 1.0 if first in ("a", "an", "one") else float(first.replace(",", "."))
        high = float(match.group(2).replace(",", ".")) if match.group(2) else low
        found.append(("duration", match.group(0), low * unit, high * unit))
    # "from about 40 minutes to an hour": a range across two units
    for match in re.finditer(rf"({_NUMBER})\s*minutes?\s+(?:to|and)\s+an\s+hour", sentence, re.I):
        found.append(("duration", match.group(0), float(match.group(1)), 60.0))
    return found


def _stems(text: str) -> set:
    return {w[:4] for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 4 and w not in _STOP}


def _sentences(text: str) -> List[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def contradictions(text: str, *, facts: Sequence[FactRecord], shared_words: int = 2) -> Tuple[Finding, ...]:
    """Figures of the answer that differ from every figure of the same kind in the article facts
    about the same thing (at least ``shared_words`` content words in common)."""
    found: List[Finding] = []
    for sentence in _sentences(text):
        words = _stems(sentence)
        for kind, said, low, high in _figures(sentence):
            related = []
            for fact in facts:
                shared = len(words & _stems(fact.text))
                theirs = [(lo, hi) for k, _, lo, hi in _figures(fact.text) if k == kind]
                if shared >= shared_words and theirs:
                    related.append((shared, fact, theirs))
            related.sort(key=lambda item: -item[0])
            if not related or any(lo <= high and low <= hi for _, _, theirs in related for lo, hi in theirs):
                continue
            fact = related[0][1]
            found.append(Finding("contradiction", said,
                                 f"the articles say: “{fact.text}” ({fact.source.short_name}, fact {fact.id})"))
    return tuple(found)


def check(text: str, *, facts: Optional[Sequence[FactRecord]] = None) -> CheckResult:
    """Every check on an answer's text; ``facts``: the article facts to compare its figures with."""
    return CheckResult(refusals(text), contradictions(text, facts=facts) if facts else ())
