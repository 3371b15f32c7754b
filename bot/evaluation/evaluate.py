"""Accuracy and safety of the real assistant over REST, next to simple baselines.

`python -m bot evaluate` (or `./run.sh evaluate`) starts the real servers, sends
every evaluation question (a fresh conversation each) and conversation, scores
the replies, runs the BM25 and TF-IDF baselines and `rasa test nlu`
cross-validation, and writes reports/evaluation.json plus the report.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import yaml

from bot.evaluation.crisis import crisis_metrics, run_crisis_set
from bot.evaluation.dataset import Item, load_dataset
from bot.evaluation.staff import load_staff_set, run_staff_set, staff_metrics
from bot.evaluation.patients import baseline_patients, known_figures, patient_metrics, run_patient_set
from bot.evaluation.scoring import Scorer, Verdict, judge
from bot.evaluation.sets import PARTS, load_crisis_set, load_patient_set
from bot.knowledge import FactRecord, KnowledgeBase, get_knowledge_base
from bot.ops.settings import PROJECT_ROOT, get_settings

REPORTS = PROJECT_ROOT / "reports"
IN_SCOPE = ("answer", "compare")


def rate(hits: int, total: int) -> Optional[float]:
    return round(hits / total, 4) if total else None


def metrics(results: Sequence[Tuple[Item, Verdict]]) -> Dict[str, object]:
    """The report's figures from (item, verdict) pairs."""
    in_scope = [(i, v) for i, v in results if i.expect in IN_SCOPE]
    single = [(i, v) for i, v in results if i.expect == "answer"]
    by_kind = lambda kind: [(i, v) for i, v in results if i.expect == kind]  # noqa: E731
    per_topic: Dict[str, List[bool]] = defaultdict(list)
    for item, verdict in in_scope:
        per_topic[item.topic].append(verdict.correct)
    needing = [(i, v) for i, v in results if i.expect != "smalltalk"]
    return {
        "items": len(results),
        "top1": rate(sum(v.correct for _, v in in_scope), len(in_scope)),
        "topic_top1": rate(sum(v.topic_correct for _, v in in_scope), len(in_scope)),
        "per_topic": {t: rate(sum(c), len(c)) for t, c in sorted(per_topic.items())},
        "wrong_route": rate(sum(v.wrong_route for _, v in single), len(single)),
        "out_of_scope_recall": rate(sum(v.correct for _, v in by_kind("fallback")), len(by_kind("fallback"))),
        "in_scope_to_fallback": rate(sum(v.fell_back for _, v in in_scope), len(in_scope)),
        "advice_referral": rate(sum(v.correct for _, v in by_kind("advice")), len(by_kind("advice"))),
        "crisis_recall": rate(sum(v.correct for _, v in by_kind("crisis")), len(by_kind("crisis"))),
        "disclaimer": rate(sum(v.disclaimer_ok for _, v in needing), len(needing)),
        "counts": {kind: len(by_kind(kind)) for kind in ("answer", "compare", "crisis", "fallback", "advice")},
    }


# --- baselines -------------------------------------------------------------------------

def _baseline_correct(item: Item, fact) -> bool:
    if fact is None or fact.topic != item.topic:
        return False
    return item.expect == "compare" or item.route in fact.routes


Ranker = Callable[[str, Optional[str]], Optional[FactRecord]]  # (text, route) -> best fact


def bm25_ranker(*, kb: KnowledgeBase, nlp) -> Ranker:
    from bot.answers.search import SearchIndex

    index = SearchIndex(knowledge_base=kb, nlp=nlp)

    def best(text: str, route: Optional[str] = None) -> Optional[FactRecord]:
        found = index.search(text, route=route, limit=1)
        return found[0].fact if found else None

    return best


def tfidf_ranker(*, kb: KnowledgeBase, nlp) -> Ranker:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    from bot.answers.search import search_terms

    topics = {t.id: t for t in kb.topics()}
    facts = list(kb.facts())
    documents = [" ".join(search_terms(nlp, f"{f.text} {topics[f.topic].title} {' '.join(topics[f.topic].keywords)}"))
                 for f in facts]
    vectorizer = TfidfVectorizer()
    matrix = vectorizer.fit_transform(documents)

    def best(text: str, route: Optional[str] = None) -> Optional[FactRecord]:
        similarities = cosine_similarity(vectorizer.transform([" ".join(search_terms(nlp, text))]), matrix)[0]
        ranked = sorted(range(len(facts)), key=lambda k: similarities[k], reverse=True)
        candidates = [facts[k] for k in ranked if similarities[k] > 0 and (route is None or route in facts[k].routes)]
        return candidates[0] if candidates else None

    return best


def baseline_old_set(items: Sequence[Item], ranker: Ranker) -> Optional[float]:
    scored = [i for i in items if i.expect in IN_SCOPE]
    return rate(sum(_baseline_correct(i, ranker(i.text, i.route)) for i in scored), len(scored))


# --- cross-validation --------------------------------------------------------------------

def cross_validation(*, folds: int, out: Path) -> Dict[str, object]:
    """`rasa test nlu --cross-validation`: intent F1 and the confusion matrix."""
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "rasa", "test", "nlu", "--nlu", "data/nlu", "--config", "config.yml",
             "--cross-validation", "--folds", str(folds), "--out", tmp],
            cwd=PROJECT_ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        report = json.loads(Path(tmp, "intent_report.json").read_text())
        matrix = Path(tmp, "intent_confusion_matrix.png")
        if matrix.exists():
            shutil.copy(matrix, out / "intent_confusion_matrix.png")
    return {
        "folds": folds,
        "weighted_f1": round(report["weighted avg"]["f1-score"], 4),
        "macro_f1": round(report["macro avg"]["f1-score"], 4),
        "per_intent_f1": {k: round(v["f1-score"], 4) for k, v in sorted(report.items())
                          if isinstance(v, dict) and "f1-score" in v and "avg" not in k},
    }


# --- the run -------------------------------------------------------------------------------

def run_evaluation(*, out: Path = REPORTS, folds: int = 3, with_cv: bool = True,
                   dev_only: bool = False, replies: Optional[Path] = None) -> Dict[str, object]:
    """Score every set against the running assistant. ``dev_only``: only the dev parts, for error
    analysis while fixing; written to evaluation-dev.json, never to the report."""
    from bot.ops.harness import NO_RATE_LIMITS, start_assistant
    from bot.understanding.nlp import load_pipeline

    out.mkdir(parents=True, exist_ok=True)
    settings = get_settings()
    kb = get_knowledge_base(database_url=settings.database_url)
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    scorer = Scorer(responses=domain["responses"], facts=kb.facts())
    dataset = load_dataset()

    single: List[Tuple[Item, Verdict]] = []
    turns: List[Tuple[Item, Verdict]] = []
    failures: List[Dict[str, object]] = []
    parts = ("dev",) if dev_only else PARTS
    crisis: Dict[str, object] = {}
    crisis2: Dict[str, object] = {}
    patients: Dict[str, object] = {}
    staff: Dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp, start_assistant(Path(tmp) / "serve.log", extra_env=NO_RATE_LIMITS) as assistant:
        transcript: List[Dict[str, object]] = []

        def say(sender: str, text: str) -> List[str]:
            answer = [m.get("text", "") for m in assistant.say(sender, text)]
            if replies is not None and sender.startswith("patients-"):
                transcript.append({"conversation": sender, "message": text, "reply": answer})
            return answer

        figures = known_figures(kb.facts(kind=None), settings.clinic_values())
        for part in parts:
            verdicts = run_crisis_set(load_crisis_set(part), say=say, scorer=scorer, prefix=f"crisis-{part}")
            crisis[part] = crisis_metrics(verdicts, with_texts=part == "dev")
            verdicts = run_crisis_set(load_crisis_set(part, family="crisis2"), say=say, scorer=scorer,
                                      prefix=f"crisis2-{part}")
            crisis2[part] = crisis_metrics(verdicts, with_texts=part == "dev")
            answers = run_patient_set(load_patient_set(part), say=say, scorer=scorer, figures=figures,
                                      prefix=f"patients-{part}")
            patients[part] = patient_metrics(answers, with_texts=part == "dev")
            requests = run_staff_set(load_staff_set(part), say=say, scorer=scorer, prefix=f"staff-{part}")
            staff[part] = staff_metrics(requests, with_texts=part == "dev")
        if replies is not None:
            # For a reading review by a person (issue 19): outside the repository, never committed.
            replies.write_text(json.dumps(transcript, indent=1, ensure_ascii=False), encoding="utf-8")
        if dev_only:
            result = {"crisis": crisis, "crisis2": crisis2, "patients": patients, "staff": staff}
            (out / "evaluation-dev.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
            return result
        for number, item in enumerate(dataset.questions):
            observed = scorer.observe(m.get("text", "") for m in assistant.say(f"eval-{number}", item.text))
            verdict = judge(item, observed)
            single.append((item, verdict))
            if not verdict.correct:
                failures.append({"text": item.text, "expected": asdict(item), "got": observed.responses,
                                 "topics": observed.topics, "facts": [f.id for f in observed.facts]})
        for number, conversation in enumerate(dataset.conversations):
            for item in conversation:
                observed = scorer.observe(m.get("text", "") for m in assistant.say(f"conv-{number}", item.text))
                verdict = judge(item, observed)
                turns.append((item, verdict))
                if not verdict.correct:
                    failures.append({"text": item.text, "conversation": number, "expected": asdict(item),
                                     "got": observed.responses, "facts": [f.id for f in observed.facts]})

    nlp = load_pipeline(str(settings.spacy_pipeline_path))
    rankers = {"bm25": bm25_ranker(kb=kb, nlp=nlp), "tfidf": tfidf_ranker(kb=kb, nlp=nlp)}
    for part in parts:
        patients[part]["baselines"] = {name: baseline_patients(load_patient_set(part), best_fact=ranker)
                                       for name, ranker in rankers.items()}
    result: Dict[str, object] = {
        "questions": metrics(single),
        "conversations": {**metrics(turns), "turn_accuracy": rate(sum(v.correct for _, v in turns), len(turns))},
        "baselines": {name: baseline_old_set(dataset.questions, ranker) for name, ranker in rankers.items()},
        "failures": failures,
        "crisis": crisis,
        "crisis2": crisis2,
        "patients": patients,
        "staff": staff,
    }
    if with_cv:
        result["cross_validation"] = cross_validation(folds=folds, out=out)
    (out / "evaluation.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result
