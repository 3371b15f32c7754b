"""Scoring a reply against what an evaluation item expects, independent of wording.

A reply is recognised by matching its messages against the domain's own
response templates (placeholders become wildcards) and by finding which
knowledge-base facts it contains; the item only names a kind, topic and route.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Pattern, Sequence

from bot.evaluation.dataset import Item
from bot.knowledge import FactRecord

RESPONSE_KINDS = {
    "utter_crisis_self": "crisis",
    "utter_crisis_medical": "crisis",
    "utter_crisis_other": "crisis",
    "utter_fallback": "fallback",
    "utter_out_of_scope": "fallback",
    "utter_personal_advice": "advice",
    "utter_greet": "greeting",
    "utter_disclaimer": "disclaimer",
    "utter_disclaimer_rate": "disclaimer",
    "utter_goodbye": "smalltalk",
    "utter_thanks": "smalltalk",
    "utter_iamabot": "smalltalk",
    "utter_capabilities": "smalltalk",
    "utter_crisis_concern": "concern",
}
NEEDS_DISCLAIMER = {"answer", "compare", "crisis", "fallback", "advice", "greeting"}


def template_patterns(responses: Dict[str, list]) -> Dict[str, Pattern[str]]:
    """A regex per response: the template text with each {placeholder} as a wildcard."""
    patterns = {}
    for name, variants in responses.items():
        alternatives = []
        for variant in variants:
            text = variant.get("text", "")
            parts = re.split(r"\{[a-z_]+\}", text)
            alternatives.append(".+?".join(re.escape(p) for p in parts))
        patterns[name] = re.compile(r"\A(?:" + "|".join(alternatives) + r")\Z", re.S)
    return patterns


@dataclass
class Observed:
    responses: List[str] = field(default_factory=list)
    facts: List[FactRecord] = field(default_factory=list)

    @property
    def kinds(self) -> set:
        kinds = {RESPONSE_KINDS[r] for r in self.responses if r in RESPONSE_KINDS}
        if self.facts and not kinds & {"advice"}:
            routes = {r for f in self.facts for r in f.routes}
            kinds.add("compare" if routes == {"iv", "im"} and not self.single_route else "answer")
        return kinds

    @property
    def topics(self) -> List[str]:
        return list(dict.fromkeys(f.topic for f in self.facts))

    @property
    def single_route(self) -> Optional[str]:
        """The one route the facts are about, if every route-specific fact shares it."""
        specific = {f.routes[0] for f in self.facts if len(f.routes) == 1}
        return next(iter(specific)) if len(specific) == 1 else None

    @property
    def has_disclaimer(self) -> bool:
        return "disclaimer" in {RESPONSE_KINDS.get(r) for r in self.responses}


class Scorer:
    def __init__(self, *, responses: Dict[str, list], facts: Sequence[FactRecord]) -> None:
        self._patterns = template_patterns(responses)
        # Longest first, so a fact that contains another is found as itself.
        self._facts = sorted(facts, key=lambda f: len(f.text), reverse=True)

    def observe(self, messages: Iterable[str]) -> Observed:
        observed = Observed()
        for text in messages:
            for name, pattern in self._patterns.items():
                if pattern.match(text):
                    observed.responses.append(name)
                    break
            else:
                observed.responses.append("?")
            observed.facts += [f for f in self._facts if f.text in text and f not in observed.facts]
        return observed


@dataclass(frozen=True)
class Verdict:
    correct: bool
    topic_correct: bool = False
    wrong_route: bool = False
    fell_back: bool = False
    disclaimer_ok: bool = True


def judge(item: Item, observed: Observed) -> Verdict:
    kinds = observed.kinds
    fell_back = "fallback" in kinds
    disclaimer_ok = observed.has_disclaimer or not (kinds & NEEDS_DISCLAIMER)
    if item.expect == "crisis":
        return Verdict("crisis" in kinds and not observed.facts, fell_back=fell_back, disclaimer_ok=disclaimer_ok)
    if item.expect in ("fallback", "advice", "greeting", "smalltalk"):
        return Verdict(item.expect in kinds, fell_back=fell_back, disclaimer_ok=disclaimer_ok)
    topic_correct = bool(observed.topics) and observed.topics[0] == item.topic
    routes = {r for f in observed.facts for r in f.routes}
    if item.expect == "compare":
        correct = topic_correct and routes == {"iv", "im"}
        return Verdict(correct, topic_correct, False, fell_back, disclaimer_ok)
    other = "im" if item.route == "iv" else "iv"
    about_route = any(item.route in f.routes for f in observed.facts)
    only_other = any(f.routes == (other,) for f in observed.facts) and not any(
        f.routes == (item.route,) for f in observed.facts
    )
    wrong_route = bool(observed.facts) and only_other
    correct = topic_correct and about_route and not any(f.routes == (other,) for f in observed.facts)
    return Verdict(correct, topic_correct, wrong_route, fell_back, disclaimer_ok)
