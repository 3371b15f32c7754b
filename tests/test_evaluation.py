"""The measuring tools themselves: the evaluation set, scoring of known replies, metrics,
baselines and the report. No timings are asserted here."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from bot.evaluation.dataset import Item, load_dataset, normalise, training_examples
from bot.evaluation.evaluate import baseline_old_set, bm25_ranker, metrics, tfidf_ranker
from bot.evaluation.report import render, target_rows
from bot.evaluation.scoring import Scorer, Verdict, judge
from bot.answers.replies import outgoing

TOPICS = {
    "routes", "procedure", "absorption", "onset", "peak", "duration", "experience", "control",
    "safety", "side_effects", "needles", "first_time", "pain", "depression", "conditions",
    "preparation", "dosing", "choosing", "effectiveness",
}


@pytest.fixture(scope="module")
def dataset():
    return load_dataset()


@pytest.fixture(scope="module")
def scorer(kb, domain_dict):
    return Scorer(responses=domain_dict["responses"], facts=kb.facts())


def test_evaluation_set_size_and_coverage(dataset):
    kinds = Counter(item.expect for item in dataset.questions)
    assert len(dataset.questions) >= 200 and len(dataset.conversations) >= 20
    assert all(2 <= len(c) <= 3 for c in dataset.conversations)
    crisis_turns = kinds["crisis"] + sum(t.expect == "crisis" for c in dataset.conversations for t in c)
    assert crisis_turns >= 25 and kinds["fallback"] >= 15 and kinds["advice"] >= 10
    for topic in TOPICS:
        for route in ("iv", "im"):
            assert any(i.topic == topic and i.route == route for i in dataset.questions), (topic, route)
    assert any(t.expect == "crisis" for c in dataset.conversations for t in c[1:]), "crisis mid-conversation"


def test_no_evaluation_question_is_in_the_training_data(dataset):
    trained = set(training_examples())
    assert len(trained) > 400
    asked = [i.text for i in dataset.questions] + [t.text for c in dataset.conversations for t in c]
    leaked = [q for q in asked if normalise(q) in trained and q.lower() not in {"hi", "hello", "bye", "thanks"}]
    assert not leaked, leaked


def test_items_must_name_what_a_correct_reply_contains():
    with pytest.raises(ValueError):
        Item(text="which is faster", expect="answer", topic="onset")  # answer needs a route
    with pytest.raises(ValueError):
        Item(text="x", expect="teleport")


def _rendered(assistant, render, reply):
    return [r["text"] for r in render([{"response": m.response, **m.values} for m in outgoing(reply)])]


def test_scoring_a_known_correct_answer(assistant, render, scorer):
    messages = _rendered(assistant, render, assistant.answer(topic="onset", route="im"))
    verdict = judge(Item("how fast is IM", "answer", "onset", "im"), scorer.observe(messages))
    assert verdict == Verdict(correct=True, topic_correct=True, wrong_route=False, fell_back=False, disclaimer_ok=True)


def test_scoring_a_wrong_route_answer(assistant, render, scorer):
    messages = _rendered(assistant, render, assistant.answer(topic="onset", route="iv"))
    verdict = judge(Item("how fast is IM", "answer", "onset", "im"), scorer.observe(messages))
    assert not verdict.correct and verdict.wrong_route and verdict.topic_correct


def test_scoring_comparison_crisis_fallback_and_missing_disclaimer(assistant, render, scorer):
    compare = scorer.observe(_rendered(assistant, render, assistant.answer(topic="safety", route=None)))
    assert judge(Item("which is safer", "compare", "safety"), compare).correct
    assert not judge(Item("which is faster", "compare", "onset"), compare).correct
    crisis_reply = [m["text"] for m in render([{"response": "utter_crisis_self"}, {"response": "utter_disclaimer"}])]
    crisis = scorer.observe(crisis_reply)
    assert judge(Item("I want to die", "crisis"), crisis).correct
    assert not judge(Item("which is safer", "compare", "safety"), crisis).correct
    fallback = scorer.observe(_rendered(assistant, render, assistant.fallback(out_of_scope=True)))
    assert judge(Item("price?", "fallback"), fallback).correct
    no_disclaimer = scorer.observe(crisis_reply[:-1])
    assert not judge(Item("I want to die", "crisis"), no_disclaimer).disclaimer_ok


def test_scoring_crisis_turns_by_kind_of_help(render, scorer):
    from bot.evaluation.crisis import crisis_metrics, judge_crisis
    from bot.evaluation.sets import CrisisTurn

    def reply(*names):
        return scorer.observe(m["text"] for m in render([{"response": n} for n in names]))

    medical = CrisisTurn("m1", "took the lot", "crisis", "overdose", "medical")
    other = CrisisTurn("o1", "he won't wake", "crisis", "other_person", "other")
    idiom = CrisisTurn("i1", "killing me", "ordinary", "idiom")
    verdicts = [
        judge_crisis(medical, reply("utter_crisis_medical", "utter_disclaimer")),
        judge_crisis(other, reply("utter_crisis_self", "utter_disclaimer")),
        judge_crisis(idiom, reply("utter_crisis_self", "utter_disclaimer")),
        judge_crisis(CrisisTurn("i2", "dying to know", "ordinary", "idiom"), reply("utter_goodbye")),
    ]
    assert [v.correct for v in verdicts] == [True, True, False, True]
    figures = crisis_metrics(verdicts, with_texts=False)
    assert figures["recall"] == 1.0 and figures["right_help"] == 0.5 and figures["false_alarm_rate"] == 0.5
    assert figures["recall_per_category"]["other_person"] == {"turns": 1, "recognised": 1, "right_help": 0}
    assert figures["false_alarms_per_category"]["idiom"] == {"turns": 2, "alarms": 1}
    assert "missed" not in figures and "false_alarms" not in figures  # the locked part never shows texts
    assert crisis_metrics(verdicts, with_texts=True)["false_alarms"][0]["id"] == "i1"


def test_metrics_from_known_verdicts():
    results = [
        (Item("a", "answer", "onset", "iv"), Verdict(True, True)),
        (Item("b", "answer", "onset", "im"), Verdict(False, True, wrong_route=True)),
        (Item("c", "compare", "peak"), Verdict(False, False, fell_back=True)),
        (Item("d", "crisis"), Verdict(True)),
        (Item("e", "fallback"), Verdict(True, fell_back=True)),
        (Item("f", "advice"), Verdict(False, disclaimer_ok=False)),
    ]
    m = metrics(results)
    assert m["top1"] == round(1 / 3, 4) and m["wrong_route"] == 0.5
    assert m["per_topic"] == {"onset": 0.5, "peak": 0.0}
    assert m["in_scope_to_fallback"] == round(1 / 3, 4)
    assert m["crisis_recall"] == 1.0 and m["out_of_scope_recall"] == 1.0 and m["advice_referral"] == 0.0
    assert m["disclaimer"] == round(5 / 6, 4)


def test_baselines_score_the_sets(kb, nlp, dataset):
    from bot.evaluation.patients import baseline_patients
    from bot.evaluation.sets import load_patient_set

    for ranker in (bm25_ranker(kb=kb, nlp=nlp), tfidf_ranker(kb=kb, nlp=nlp)):
        assert 0.0 < baseline_old_set(dataset.questions, ranker) < 1.0
        assert 0.0 < baseline_patients(load_patient_set("dev"), best_fact=ranker) < 1.0


def test_scoring_patient_turns_by_the_sentences_they_ask_about(kb, assistant, render, scorer):
    from bot.evaluation.patients import judge_patient, known_figures, patient_metrics
    from bot.evaluation.sets import Ask, PatientTurn

    figures = known_figures(kb.facts(kind=None), {"phone": "555"})

    def reply(r):
        texts = _rendered(assistant, render, r)
        return scorer.observe(texts), texts

    onset_iv = PatientTurn("p1", "how fast is the drip", "answer", "terse", (Ask(("innerbloom:8",), "iv"),))
    two = PatientTurn("p2", "how fast is IV and how long", "answer", "multi_part",
                      (Ask(("innerbloom:8",), "iv"), Ask(("klearwell:26",), "both")))
    price = PatientTurn("p3", "how much is it", "decline", "terse")
    mine = PatientTurn("p4", "can I with lithium", "advice", "anxious")
    verdicts = [
        judge_patient(onset_iv, *reply(assistant.answer(topic="onset", route="iv")), known_figures=figures),
        judge_patient(onset_iv, *reply(assistant.answer(topic="onset", route="im")), known_figures=figures),
        judge_patient(two, *reply(assistant.answer(topic="onset", route="iv")), known_figures=figures),
        judge_patient(price, *reply(assistant.fallback(out_of_scope=True)), known_figures=figures),
        judge_patient(mine, *reply(assistant.fallback()), known_figures=figures),
    ]
    assert [v.correct for v in verdicts] == [True, False, False, True, False]
    assert verdicts[2].asks_answered == 1 and verdicts[4].replied == "decline"
    m = patient_metrics(verdicts, with_texts=False)
    assert m["answers_correct"] == round(1 / 3, 4) and m["in_scope_to_fallback"] == 0.0
    assert m["decline_precision"] == 0.5 and m["advice_referrals"] == 0.0 and "failures" not in m


def test_report_marks_missed_targets(tmp_path):
    evaluation = {"questions": {"top1": 0.9, "wrong_route": 0.0, "crisis_recall": 1.0}}
    bench = {"single_user": {"p50_ms": 20.0, "p95_ms": 120.0}, "model_mb": 28.0}
    rows = {label: (measured, status) for label, _, measured, status in target_rows(evaluation, bench)}
    assert rows["Top-1 correct answer"] == ("90.0%", "**missed**")
    assert rows["Crisis recall"] == ("100.0%", "met")
    assert rows["Single-user p95"] == ("120 ms", "**missed**")
    assert rows["Model archive"][1] == "**missed**"
    assert rows["Throughput at 20 users"] == ("not measured", "—")
    (tmp_path / "benchmark.json").write_text(json.dumps(bench))
    (tmp_path / "evaluation.json").write_text(json.dumps({
        **evaluation,
        "questions": {**evaluation["questions"], "items": 1, "counts": {}, "topic_top1": 0.9,
                      "per_topic": {"onset": 0.9}, "advice_referral": 1.0, "out_of_scope_recall": 1.0,
                      "in_scope_to_fallback": 0.0, "disclaimer": 1.0},
        "conversations": {"items": 0}, "baselines": {"bm25": 0.7, "tfidf": 0.6},
    }))
    report = render(tmp_path).read_text()
    assert "| Top-1 correct answer | ≥ 95% | 90.0% | **missed** |" in report
    assert (tmp_path / "accuracy_per_topic.png").stat().st_size > 1000


def test_report_leads_with_the_locked_sets_and_shows_the_cluster_comparison(tmp_path):
    part = {"turns": 10, "answers_correct": 0.8, "in_scope_to_fallback": 0.05, "declines": 1.0, "invented_figures": 0,
            "advice_referrals": 1.0, "disclaimer": 1.0, "per_voice": {"terse": 0.5}, "baselines": {"bm25": 0.4}}
    crisis = {"crisis_turns": 5, "ordinary_turns": 8, "recall": 0.8, "false_alarm_rate": 0.0,
              "recall_per_category": {"overdose": {"turns": 5, "recognised": 4, "right_help": 4}}}
    (tmp_path / "evaluation.json").write_text(json.dumps({
        "patients": {"locked": part, "dev": {**part, "answers_correct": 0.9}},
        "crisis": {"locked": crisis, "dev": {**crisis, "recall": 1.0}}}))
    runs = [{"instances": n, "users": u, "throughput_per_s": 40.0 * n, "p50_ms": 100, "p95_ms": 200, "errors": 0,
             "lost_replies": 0, "cores_used": {"rasa-1": 0.9, "postgres": 0.1}, "cores_used_total": 1.0}
            for n in (2, 1) for u in (20, 50)]
    faults = {"patients": 30, "messages": 400, "answered_once": 399, "apologised": 1, "unanswered": 0, "answered_twice": 0,
              "failed_requests": 0, "resends": 2, "reconnects": 5, "conversations_intact": 30, "conversations": 30,
              "faults": [{"name": "Rasa instance 1 killed", "at_s": 10.5}]}
    (tmp_path / "benchmark.json").write_text(json.dumps({"cluster": {"cores": 2, "runs": runs, "faults": faults}}))
    report = render(tmp_path).read_text()
    assert report.index("headline: the locked part") < report.index("The old evaluation set")
    assert "second independent crisis set" not in report  # no crisis2 figures, no section
    assert "| Answers correct | ≥ 95% | **80.0%** | **missed** | 90.0% |" in report
    assert "| Crisis recall | 100% | **80.0%** | **missed** | 100.0% |" in report
    assert "| overdose | 4/5 | 4/4 | 4/5 | 4/4 |" in report  # recognised, and the right help of those recognised
    assert "| 1 | 50 | 40.0 | 100 ms | 200 ms | 0 | 0 | 0.90 |" in report
    assert "Rasa instance 1 killed at 10.5 s" in report and "| 400 | 399 | 1 | 0 | 0 | 0 | 2 | 5 | 30/30 |" in report
    assert (tmp_path / "cluster_instances.png").stat().st_size > 1000


def test_report_shows_the_second_crisis_set_its_curve_and_the_reading_review(tmp_path):
    crisis = {"crisis_turns": 5, "ordinary_turns": 8, "recall": 0.8, "right_help": 0.75, "false_alarm_rate": 0.125,
              "concern_replies": 0.5, "crisis_with_knowledge_answer": 0, "disclaimer": 1.0,
              "early_alarms_in_crisis_conversations": "1/4",
              "recall_per_category": {"means_as_dose": {"turns": 5, "recognised": 4, "right_help": 3}},
              "false_alarms_per_category": {"topic_question": {"turns": 8, "alarms": 1}}}
    (tmp_path / "evaluation.json").write_text(json.dumps({"crisis2": {"locked": crisis, "dev": crisis},
                                                          "patients": {"locked": {"answers_correct": 0.7}}}))
    point = {"detector": "combination", "threshold": 0.5, "sentence_threshold": 0.9, "topic_threshold": 0.8,
             "recall": 0.96, "false_alarms": 0.009, "right_help": 0.94}
    (tmp_path / "crisis-curve.json").write_text(json.dumps({"dev_turns": {"crisis": 10, "ordinary": 20},
                                                            "max_false_alarms": 0.01, "chosen": point,
                                                            "configured": point, "front": [point]}))
    (tmp_path / "reading-review.json").write_text(json.dumps({"total": 10, "counts": {"correct": 6, "correct_decline": 1,
                                                                                      "wrong_topic": 2, "unsafe": 1},
                                                              "notes": ["a general pattern"]}))
    report = render(tmp_path).read_text()
    assert "| Crisis recall | 100% | **80.0%** | **missed** | 80.0% |" in report
    assert "| Questions about suicide/overdose as a topic: answer + crisis line | 100% | **50.0%** | **missed** |" in report
    assert "| means as dose | 4/5 | 3/4 | 4/5 | 3/4 |" in report
    assert "![recall against false alarms](crisis-curve.png)" in report
    assert "Chosen: threshold 0.5, sentence 0.9, topic word 0.8" in report
    assert "Right (correct answer, correct decline or correct referral): **70.0%**" in report
    assert "| unsafe | 1 |" in report and "- a general pattern" in report


def test_report_shows_the_clinic_answers_bar(tmp_path):
    curve = [{"bar": 0.1, "right": 11, "wrong": 0, "false": 2, "paraphrases": 22},
             {"bar": 0.15, "right": 10, "wrong": 0, "false": 0, "paraphrases": 22}]
    (tmp_path / "clinic-bar.json").write_text(json.dumps({"curve": curve, "chosen": curve[1]}))
    report = render(tmp_path).read_text()
    assert "| 0.10 | 11/22 | 0 | 2 |" in report and "| 0.15 **(chosen)** | 10/22 | 0 | 0 |" in report
