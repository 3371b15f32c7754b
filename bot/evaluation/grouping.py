"""How well the dashboard groups unanswered questions (bot/staff/clusters.py), offline, on the
labelled paraphrases in evaluation/grouping/ (written apart from the project).

Each set is a list of labelled groups of paraphrases (and single questions that belong with no
other). All of a set's questions are grouped at once, as the dashboard groups a period's
unanswered questions, and scored:

- purity: for each group made, the share of its questions that carry its most common label,
  weighted by the group's size (merging different questions lowers it; never merging keeps it 1);
- recall: for each label, the share of its questions that land in the one group holding most of
  them, weighted by the label's size (splitting paraphrases lowers it; one group of everything
  keeps it 1).

The meaning grouping's distance is chosen on the dev part only (the best harmonic mean of purity
and recall on a grid); the locked part is scored once with it, and both are written beside the
old lemma grouping (at its own distance) to reports/grouping.json and reports/report.md.

    python -m bot.evaluation.grouping [--out reports]
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from bot.ops.settings import PROJECT_ROOT
from bot.staff import clusters

GROUPING_DIR = PROJECT_ROOT / "evaluation" / "grouping"
GRID = tuple(round(0.30 + 0.025 * i, 3) for i in range(27))  # cosine distances 0.30 .. 0.95


def load_grouping_set(part: str, root: Path = GROUPING_DIR) -> List[Tuple[str, str]]:
    """(question, label) pairs of evaluation/grouping/<part>.yml."""
    data = yaml.safe_load((root / f"{part}.yml").read_text(encoding="utf-8")) or {}
    pairs = [(str(q), str(group["label"])) for group in data.get("groups", []) for q in group.get("questions", [])]
    if not pairs:
        raise ValueError(f"{root / part}.yml has no labelled questions")
    return pairs


def score(groups: Sequence[Sequence[str]], labels: Dict[str, str]) -> Dict[str, float]:
    """Purity and recall (module docstring) of ``groups`` (each a list of all its questions)."""
    total = sum(len(group) for group in groups)
    purity = sum(Counter(labels[q] for q in group).most_common(1)[0][1] for group in groups if group) / total
    by_label: Dict[str, Counter] = {}
    for index, group in enumerate(groups):
        for q in group:
            by_label.setdefault(labels[q], Counter())[index] += 1
    recall = sum(counts.most_common(1)[0][1] for counts in by_label.values()) / total
    return {"purity": round(purity, 4), "recall": round(recall, 4),
            "f": round(2 * purity * recall / (purity + recall), 4) if purity + recall else 0.0,
            "groups": len(groups), "questions": total, "labels": len(by_label)}


def members(groups: Sequence[clusters.Cluster]) -> List[Tuple[str, ...]]:
    return [group.members for group in groups]


def evaluate(*, nlp, root: Path = GROUPING_DIR) -> Dict[str, object]:
    """Both groupings exactly as the dashboard runs them (bot/staff/clusters.py), on both parts."""
    meaning = clusters.MeaningGrouper(encoder_loader=clusters.default_encoder)
    result: Dict[str, object] = {"definitions": {
        "purity": "per group made, the share of its most common label, weighted by group size",
        "recall": "per label, the share of its questions in the one group holding most of them, weighted by label size"}}
    parts = {}
    for part in ("dev", "locked"):
        pairs = load_grouping_set(part, root)
        questions = list(dict.fromkeys(q for q, _ in pairs))
        started = time.perf_counter()
        meaning.embed(questions)  # once per text; every distance below reuses it
        result[f"{part}_seconds"] = round(time.perf_counter() - started, 2)
        parts[part] = (questions, dict(pairs))
    questions, labels = parts["dev"]
    curve = [{"distance": d, **score(members(meaning.at(d).group(questions)), labels)} for d in GRID]
    best = max(curve, key=lambda row: (row["f"], row["purity"]))
    result["grid"] = list(GRID)
    result["dev_curve"] = curve
    result["chosen_distance"] = best["distance"]
    result["configured_distance"] = clusters.MEANING_DISTANCE
    result["words_distance"] = clusters.WORDS_DISTANCE
    for part, (questions, labels) in parts.items():
        result[part] = {
            "meaning": score(members(meaning.at(clusters.MEANING_DISTANCE).group(questions)), labels),
            "words": score(members(clusters.group_by_words(questions, nlp=nlp)), labels),
        }
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.evaluation.grouping", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports")
    args = parser.parse_args(argv)
    from bot.evaluation.report import render

    result = evaluate(nlp=clusters.default_nlp())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grouping.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("chosen_distance", "configured_distance", "dev", "locked")}, indent=2))
    render(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
