"""The independent evaluation set (evaluation/questions.yml)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import yaml

from bot.ops.settings import PROJECT_ROOT

DATASET = PROJECT_ROOT / "evaluation" / "questions.yml"
KINDS = ("answer", "compare", "crisis", "fallback", "advice", "greeting", "smalltalk")


@dataclass(frozen=True)
class Item:
    text: str
    expect: str
    topic: Optional[str] = None
    route: Optional[str] = None

    def __post_init__(self) -> None:
        if self.expect not in KINDS:
            raise ValueError(f"unknown expectation {self.expect!r} for {self.text!r}")
        if self.expect in ("answer", "compare") and not self.topic:
            raise ValueError(f"{self.text!r} needs a topic")
        if (self.expect == "answer") != (self.route is not None):
            raise ValueError(f"{self.text!r}: a route goes with 'answer' only")


@dataclass(frozen=True)
class Dataset:
    questions: Tuple[Item, ...]
    conversations: Tuple[Tuple[Item, ...], ...]


def load_dataset(path: Path = DATASET) -> Dataset:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    questions = tuple(Item(**q) for q in data["questions"])
    conversations = tuple(tuple(Item(**turn) for turn in conv) for conv in data["conversations"])
    return Dataset(questions, conversations)


def normalise(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalnum() or ch.isspace()).split())


def training_examples(data_dir: Path = PROJECT_ROOT / "data" / "nlu") -> List[str]:
    """Every NLU training example, normalised (entity annotations removed)."""
    from bot.understanding.nlu_data import examples

    return [normalise(text) for _, text in examples(data_dir)]
