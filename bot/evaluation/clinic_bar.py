"""Calibrates the clinic answers' similarity bar (CLINIC_ANSWER_MIN_SCORE): sample clinic answers
(evaluation/clinic/dev.yml) are approved into a temporary store beside the real knowledge base,
and for each bar it counts the paraphrases that get their answer (right), the ones that get
another clinic answer (wrong), and the questions that should get none - other uncovered
subjects and the patient dev set's questions about the articles - but do (false). The bar
chosen is the highest of those with the most right answers and no wrong or false one. Writes
reports/clinic-bar.json.

    python -m bot.evaluation.clinic_bar
"""
from __future__ import annotations

import json
import tempfile
from typing import Dict, List, Tuple

import yaml
from sqlalchemy import create_engine

from bot.ops.settings import PROJECT_ROOT

DEV_SET = PROJECT_ROOT / "evaluation" / "clinic" / "dev.yml"
PATIENT_DEV = PROJECT_ROOT / "evaluation" / "patients" / "dev"
REPORT = PROJECT_ROOT / "reports" / "clinic-bar.json"
BARS = [round(0.05 * i, 2) for i in range(1, 13)]


def scored(knowledge_base) -> Tuple[List[Tuple[float, bool]], List[float]]:
    """(score, right answer?) per paraphrase and the score of each question that should get none
    (only those whose closest is a clinic answer: the others never get one)."""
    from bot.clinic.matcher import ClinicMatcher
    from bot.clinic.store import ClinicStore

    data = yaml.safe_load(DEV_SET.read_text(encoding="utf-8"))
    store = ClinicStore(engine=create_engine(f"sqlite:///{tempfile.mkdtemp()}/clinic.db", future=True))
    for answer in data["answers"].values():
        answer_id = store.draft(title=answer["title"], text=answer["text"], examples=answer["examples"],
                                author="calibration-writer")
        store.approve(answer_id=answer_id, reviewer="calibration-reviewer", revision=1)
    matcher = ClinicMatcher(store=store, knowledge_base=knowledge_base, min_score=0.0)
    paraphrases = []
    for answer in data["answers"].values():
        for text in answer["asks"]:
            found = matcher.best(text)
            paraphrases.append((found[1], found[0].title == answer["title"]) if found else (0.0, False))
    others = list(data["others"]) + [m["text"] for path in sorted(PATIENT_DEV.glob("*.yml"))
                                     for m in yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]
                                     if m.get("expect") != "decline"]
    false = [found[1] for found in map(matcher.best, others) if found]
    return paraphrases, false


def curve(paraphrases: List[Tuple[float, bool]], false: List[float]) -> List[Dict[str, float]]:
    rows = []
    for bar in BARS:
        rows.append({"bar": bar, "right": sum(1 for s, ok in paraphrases if ok and s >= bar),
                     "wrong": sum(1 for s, ok in paraphrases if not ok and s >= bar and s > 0),
                     "false": sum(1 for s in false if s >= bar), "paraphrases": len(paraphrases)})
    return rows


def main() -> int:
    from bot.knowledge import KnowledgeSnapshot, get_knowledge_base

    rows = curve(*scored(KnowledgeSnapshot(get_knowledge_base())))
    safe = [r for r in rows if r["wrong"] == 0 and r["false"] == 0]
    chosen = max(safe, key=lambda r: (r["right"], r["bar"])) if safe else None  # the most right, then the highest bar
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps({"curve": rows, "chosen": chosen}, indent=2) + "\n", encoding="utf-8")
    for row in rows:
        print(f"bar {row['bar']:.2f}: right {row['right']}/{row['paraphrases']}, wrong {row['wrong']}, "
              f"false {row['false']}" + ("   <- chosen" if row is chosen else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
