"""Choosing RUNNER_UP_MARGIN (bot/answers/assistant.py) on the dev part of the patient set: when NLU's
first two topics are this close, the second is offered as a button ("Or did you mean: ...?").

For every dev question about one topic, the topics that would answer it are those of the facts
restating its article sentences. A margin *rescues* a question when NLU's first topic is wrong,
its second right, and the two are within the margin; it *adds noise* when the first topic was
right and a button is offered anyway. The chosen margin rescues the most questions per button
shown (a button under an answer that was right is clutter), with buttons under at most
``MAX_OFFERED`` of the answers.

    python -m bot.evaluation.runner_up [--model models/assistant-....tar.gz] [--out reports]
"""
from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

MARGINS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
MAX_OFFERED = 0.3


def expected_topics(kb, sentences: Sequence[str]) -> Set[str]:
    return {f.topic for f in kb.facts(kind=None) if set(f.restates) & set(sentences)}


def rankings(model: str, texts: Sequence[str]) -> List[List[Tuple[str, float]]]:
    from rasa.core.agent import load_agent

    agent = asyncio.run(load_agent(model_path=model))

    async def parse_all():
        return [await agent.parse_message(text) for text in texts]

    return [[(r["name"], float(r["confidence"])) for r in parsed.get("intent_ranking") or []]
            for parsed in asyncio.run(parse_all())]


def sweep(cases: Sequence[Tuple[Set[str], List[Tuple[str, float]]]]) -> List[Dict[str, float]]:
    rows = []
    for margin in MARGINS:
        rescued = offered = noise = 0
        for topics, ranking in cases:
            asks = [(name[4:], conf) for name, conf in ranking if name.startswith("ask_") and name != "ask_followup"]
            if len(asks) < 2:
                continue
            (first, c1), (second, c2) = asks[0], asks[1]
            if c1 - c2 > margin:
                continue
            offered += 1
            if first not in topics and second in topics:
                rescued += 1
            if first in topics:
                noise += 1
        rows.append({"margin": margin, "rescued": rescued, "offered": round(offered / max(len(cases), 1), 4),
                     "offered_when_first_was_right": noise, "questions": len(cases)})
    return rows


def choose(rows: Sequence[Dict[str, float]]) -> Optional[Dict[str, float]]:
    allowed = [r for r in rows if r["offered"] <= MAX_OFFERED and r["rescued"] > 0]
    return max(allowed, key=lambda r: (r["rescued"] / (r["offered"] * r["questions"]), -r["margin"])) if allowed else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    from bot.evaluation.sets import load_patient_set
    from bot.knowledge import get_knowledge_base
    from bot.ops.settings import get_settings
    from bot.ops.training import ensure_model

    kb = get_knowledge_base(database_url=get_settings().database_url)
    turns = [t for t in load_patient_set("dev").messages if t.expect == "answer" and len(t.asks) == 1]
    model = args.model or str(ensure_model())
    ranked = rankings(model, [t.text for t in turns])
    cases = [(expected_topics(kb, t.asks[0].sentences), r) for t, r in zip(turns, ranked)]
    rows = sweep(cases)
    result = {"max_offered": MAX_OFFERED, "chosen": choose(rows), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runner-up.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
