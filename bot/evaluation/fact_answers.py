"""Choosing how the fact ranker takes part (bot/answers/assistant.py: RANKER_OVERRULES_BELOW,
RANKER_MARGIN) on the dev part of the patient set, offline: each dev message is parsed by the
trained model's NLU (as the Rasa server does), answered by the assistant as the action server
would, and judged as the evaluation judges it (a fact restating the asked article sentences,
about the asked route). The dev part only: the locked part is scored by ``./run.sh evaluate``.

    python -m bot.evaluation.fact_answers [--model models/assistant-....tar.gz] [--out reports]
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import bot.answers.assistant as assistant_module
from bot.answers.assistant import Context, Question

GRID = {"RANKER_OVERRULES_BELOW": (0.0, 0.3, 0.45, 0.6, 0.75, 0.9, 1.01), "RANKER_MARGIN": (0.0, 0.05, 0.1, 0.2)}


def parse_all(model: str, texts: Sequence[str]) -> List[dict]:
    from rasa.core.agent import load_agent

    agent = asyncio.run(load_agent(model_path=model))

    async def run():
        return [await agent.parse_message(text) for text in texts]

    return asyncio.run(run())


def _question(data: dict) -> Question:
    intent = data.get("intent") or {}
    routes = tuple(dict.fromkeys(e["value"] for e in data.get("entities") or []
                                 if e.get("entity") == "route" and e.get("value") in ("iv", "im")))
    return Question(data.get("text") or "", intent.get("name"), float(intent.get("confidence") or 0.0), routes)


def score(assistant, turns, parses) -> float:
    from bot.evaluation.patients import answers

    correct = 0
    for turn, parse in zip(turns, parses):
        parts = [_question(p) for p in parse.get("questions") or []]
        reply = assistant.respond(question=_question(parse), parts=parts, context=Context())
        correct += all(answers(ask, reply.facts) for ask in turn.asks)
    return round(correct / max(len(turns), 1), 4)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    from bot.answers.assistant import get_assistant
    from bot.evaluation.sets import load_patient_set
    from bot.ops.training import ensure_model

    turns = [t for t in load_patient_set("dev").messages if t.expect == "answer"]
    parses = parse_all(args.model or str(ensure_model()), [t.text for t in turns])
    assistant = get_assistant()
    rows: List[Dict[str, float]] = []
    for below, margin in itertools.product(*GRID.values()):
        assistant_module.RANKER_OVERRULES_BELOW, assistant_module.RANKER_MARGIN = below, margin
        rows.append({"RANKER_OVERRULES_BELOW": below, "RANKER_MARGIN": margin,
                     "answers_correct": score(assistant, turns, parses)})
    best = max(rows, key=lambda r: (r["answers_correct"], -r["RANKER_OVERRULES_BELOW"], r["RANKER_MARGIN"]))
    baseline = next(r for r in rows if r["RANKER_OVERRULES_BELOW"] == 0.0 and r["RANKER_MARGIN"] == 0.0)
    result = {"dev_questions": len(turns), "nlu_topics_only": baseline, "chosen": best, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fact-answers.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("dev_questions", "nlu_topics_only", "chosen")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
