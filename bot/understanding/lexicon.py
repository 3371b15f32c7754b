"""The lay vocabulary in knowledge/lexicon.yml: topic phrases, comparison and follow-up cues."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Pattern, Tuple

import yaml

from bot.ops.settings import PROJECT_ROOT

LEXICON_FILE = PROJECT_ROOT / "knowledge" / "lexicon.yml"


def _alternation(phrases) -> Pattern[str]:
    ordered = sorted({str(p).lower() for p in phrases}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(p) for p in ordered) + r")(?![\w-])")


@dataclass(frozen=True)
class Lexicon:
    topics: Dict[str, Tuple[str, ...]]
    topic_patterns: Dict[str, Pattern[str]]
    comparison: Pattern[str]
    follow_up_start: Pattern[str]
    follow_up_word: Pattern[str]

    def topics_in(self, text: str) -> List[str]:
        """Topics whose lay phrases occur in ``text``."""
        lowered = text.lower()
        return [topic for topic, pattern in self.topic_patterns.items() if pattern.search(lowered)]

    def compares(self, text: str) -> bool:
        return bool(self.comparison.search(text.lower()))

    def follows_up(self, text: str) -> bool:
        lowered = text.lower().strip()
        return bool(self.follow_up_start.match(lowered) or self.follow_up_word.search(lowered))


@lru_cache(maxsize=2)
def load_lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    topics = {topic: tuple(str(p).lower() for p in phrases) for topic, phrases in data["topics"].items()}
    starts = sorted((str(c).lower() for c in data["follow_up_cues"]), key=len, reverse=True)
    return Lexicon(
        topics=topics,
        topic_patterns={topic: _alternation(phrases) for topic, phrases in topics.items()},
        comparison=_alternation(data["comparison_cues"]),
        follow_up_start=re.compile(r"^(?:" + "|".join(re.escape(s) for s in starts) + r")\b"),
        follow_up_word=_alternation(data["follow_up_words"]),
    )
