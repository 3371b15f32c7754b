"""The staff-side requests, written apart from the training data (evaluation/staff/{dev,locked}.yml):
"privacy", "forget me" and "talk to a person" in many voices, and near-misses that use the same
words for something else ("will I forget things after the infusion?"), which must get none of
those replies. Each message is sent in a conversation of its own; the reply is recognised by its
domain response."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import yaml

from bot.evaluation.scoring import Scorer
from bot.evaluation.sets import EVALUATION_DIR

# What each request must get (the first response of the reply).
REPLIES = {"privacy": "utter_privacy", "forget_me": "utter_forget_ask", "talk_to_person": "utter_handoff"}
EXPECTS = tuple(REPLIES) + ("other",)


@dataclass(frozen=True)
class StaffTurn:
    id: str
    voice: str
    text: str
    expect: str


def load_staff_set(part: str, root: Path = EVALUATION_DIR) -> List[StaffTurn]:
    data = yaml.safe_load((root / "staff" / f"{part}.yml").read_text(encoding="utf-8")) or {}
    turns = [StaffTurn(str(m["id"]), str(m.get("voice", "")), str(m["text"]), str(m["expect"]))
             for m in data.get("messages") or []]
    unknown = {t.expect for t in turns} - set(EXPECTS)
    if unknown:
        raise ValueError(f"evaluation/staff/{part}.yml: unknown expect {sorted(unknown)}")
    return turns


def got(responses: Sequence[str]) -> str:
    for name, response in REPLIES.items():
        if response in responses:
            return name
    return "other"


def run_staff_set(turns: Sequence[StaffTurn], *, say: Callable[[str, str], List[str]], scorer: Scorer,
                  prefix: str) -> List[Dict[str, str]]:
    return [{"id": t.id, "voice": t.voice, "expect": t.expect,
             "got": got(scorer.observe(say(f"{prefix}-{n}", t.text)).responses), "text": t.text}
            for n, t in enumerate(turns)]


def staff_metrics(results: Sequence[Dict[str, str]], *, with_texts: bool = False) -> Dict[str, object]:
    """Per request: recall (it got its reply) and precision (that reply was right); for the other
    messages: how many wrongly got one of the three replies."""
    expected, given = Counter(r["expect"] for r in results), Counter(r["got"] for r in results)
    right = Counter(r["expect"] for r in results if r["got"] == r["expect"])
    metrics: Dict[str, object] = {"turns": len(results),
                                  "accuracy": round(sum(right.values()) / len(results), 4) if results else None}
    for name in REPLIES:
        metrics[f"{name}_recall"] = round(right[name] / expected[name], 4) if expected[name] else None
        metrics[f"{name}_precision"] = round(right[name] / given[name], 4) if given[name] else None
    others = [r for r in results if r["expect"] == "other"]
    metrics["other_false_triggers"] = sum(r["got"] != "other" for r in others)
    metrics["other_turns"] = len(others)
    if with_texts:
        metrics["misses"] = [r for r in results if r["got"] != r["expect"]]
    return metrics
