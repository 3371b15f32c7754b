"""Reading the NLU training examples (data/nlu, Rasa's YAML format) outside Rasa: the
knowledge-base search uses each topic's example questions, and the evaluation proves its sets
are not among them."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from bot.ops.settings import PROJECT_ROOT

NLU_DIR = PROJECT_ROOT / "data" / "nlu"
_ANNOTATION = re.compile(r"\[([^\]]+)\]\([^)]+\)|\[([^\]]+)\]\{[^}]+\}")


def examples(data_dir: Path = NLU_DIR) -> List[Tuple[str, str]]:
    """(intent, text) for every example, entity annotations removed."""
    found = []
    for path in sorted(data_dir.glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if "intent" not in block:
                continue
            for line in (block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    found.append((block["intent"], _ANNOTATION.sub(lambda m: m.group(1) or m.group(2), line[2:]).strip()))
    return found


DECLINE = "out_of_scope"


@lru_cache(maxsize=2)
def topic_examples(data_dir: Path = NLU_DIR, prefix: str = "ask_") -> Dict[str, Tuple[str, ...]]:
    """Example questions per topic (the examples of each ``ask_<topic>`` intent), and under
    DECLINE the questions the articles do not answer."""
    by_topic: Dict[str, List[str]] = {}
    for intent, text in examples(data_dir):
        if intent.startswith(prefix) and intent != "ask_followup":
            by_topic.setdefault(intent[len(prefix):], []).append(text)
        elif intent == DECLINE:
            by_topic.setdefault(DECLINE, []).append(text)
    return {topic: tuple(texts) for topic, texts in by_topic.items()}
