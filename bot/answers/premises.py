"""Wrong premises the articles contradict (knowledge/premises.yml): "the IM goes into a vein
too, right?" gets the correction - a fact of the knowledge base - before its answer."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Pattern, Tuple

import yaml

from bot.ops.settings import PROJECT_ROOT

PREMISES_FILE = PROJECT_ROOT / "knowledge" / "premises.yml"
_NEGATION = re.compile(r"\b(not|no|never|isn'?t|doesn'?t|don'?t|won'?t|aren'?t|without)\b|n't\b")


@dataclass(frozen=True)
class Premise:
    id: str
    pattern: Pattern[str]
    fact: str  # id of the fact that corrects it
    reason: str


@lru_cache(maxsize=2)
def load_premises(path: Path = PREMISES_FILE) -> Tuple[Premise, ...]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return tuple(Premise(p["id"], re.compile(p["pattern"]), p["fact"], p["reason"]) for p in data["premises"])


def wrong_premises(text: str, premises: Tuple[Premise, ...] = ()) -> List[Premise]:
    """The premises ``text`` takes for granted (at most one per corrected fact)."""
    lowered = text.lower()
    found: List[Premise] = []
    for premise in premises or load_premises():
        match = premise.pattern.search(lowered)
        if match is None or _NEGATION.search(match.group(0)):
            continue
        if premise.fact not in {p.fact for p in found}:
            found.append(premise)
    return found
