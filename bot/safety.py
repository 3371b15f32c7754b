"""Crisis detection: a deterministic check that runs on every message.

The NLU pipeline also learns a ``crisis`` intent, but a pattern match on the
raw text is what guarantees that suicidal thoughts, self-harm and medical
emergencies are never missed, in any turn (see bot/rasa_components.py).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import List, Pattern

import yaml

PATTERNS_FILE = Path(__file__).with_name("crisis_patterns.yml")


def normalise(text: str) -> str:
    """Lower-case, straighten apostrophes, squeeze whitespace."""
    text = text.lower().replace("\u2019", "'").replace("`", "'")
    return " ".join(text.split())


@lru_cache(maxsize=1)
def _patterns() -> List[Pattern[str]]:
    data = yaml.safe_load(PATTERNS_FILE.read_text(encoding="utf-8"))
    return [re.compile(p) for group in data["patterns"].values() for p in group]


def is_crisis(text: str) -> bool:
    """True if the message mentions suicidal thoughts, self-harm or a medical emergency."""
    clean = normalise(text or "")
    return any(p.search(clean) for p in _patterns())
