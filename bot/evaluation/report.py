"""Write reports/report.md and its charts from evaluation.json and benchmark.json."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from bot.evaluation.speed_report import profile_section, stock_comparison_section
from bot.ops.settings import PROJECT_ROOT

REPORTS = PROJECT_ROOT / "reports"

# (label, where to find it, target text, check)
Target = Tuple[str, Callable[[dict, dict], Optional[float]], str, Callable[[float], bool], str]
TARGETS: List[Target] = [
    ("Top-1 correct answer", lambda e, b: e.get("questions", {}).get("top1"), "≥ 95%", lambda v: v >= 0.95, "pct"),
    ("Wrong-route answers", lambda e, b: e.get("questions", {}).get("wrong_route"), "≤ 1%", lambda v: v <= 0.01, "pct"),
    ("Out-of-scope recall", lambda e, b: e.get("questions", {}).get("out_of_scope_recall"), "≥ 90%", lambda v: v >= 0.90, "pct"),
    ("In-scope sent to fallback", lambda e, b: e.get("questions", {}).get("in_scope_to_fallback"), "≤ 3%",
     lambda v: v <= 0.03, "pct"),
    ("Crisis recall", lambda e, b: e.get("questions", {}).get("crisis_recall"), "100%", lambda v: v >= 1.0, "pct"),
    ("Disclaimer present", lambda e, b: e.get("questions", {}).get("disclaimer"), "100%", lambda v: v >= 1.0, "pct"),
    ("Single-user p50", lambda e, b: b.get("single_user", {}).get("p50_ms"), "≤ 50 ms", lambda v: v <= 50, "ms"),
    ("Single-user p95", lambda e, b: b.get("single_user", {}).get("p95_ms"), "≤ 80 ms", lambda v: v <= 80, "ms"),
    ("Throughput at 20 users", lambda e, b: _load(b, 20, "throughput_per_s"), "≥ 40 msg/s", lambda v: v >= 40, "rate"),
    ("p95 at 20 users", lambda e, b: _load(b, 20, "p95_ms"), "≤ 500 ms", lambda v: v <= 500, "ms"),
    ("Lost replies at 20 users", lambda e, b: _load(b, 20, "lost_replies"), "0", lambda v: v == 0, "n"),
    ("Training time (cold)", lambda e, b: b.get("training_seconds"), "≤ 120 s", lambda v: v <= 120, "s"),
    ("Start to ready", lambda e, b: b.get("ready_seconds"), "≤ 30 s", lambda v: v <= 30, "s"),
    ("Rasa server RSS after load", lambda e, b: b.get("memory_after_load", {}).get("processes", {}).get("Rasa server"),
     "≤ 900 MB", lambda v: v <= 900, "mb"),
    ("Model archive", lambda e, b: b.get("model_mb"), "≤ 15 MB", lambda v: v <= 15, "mb"),
]


def _load(bench: dict, users: int, key: str) -> Optional[float]:
    for run in bench.get("load", []):
        if run.get("users") == users:
            return run.get(key)
    return None


def _fmt(value: Optional[float], unit: str) -> str:
    if value is None:
        return "not measured"
    return {"pct": f"{value * 100:.1f}%", "ms": f"{value:.0f} ms", "rate": f"{value:.1f} msg/s",
            "s": f"{value:.1f} s", "mb": f"{value:.1f} MB", "n": f"{value:.0f}"}[unit]


def target_rows(evaluation: dict, bench: dict) -> List[Tuple[str, str, str, str]]:
    rows = []
    for label, get, target, check, unit in TARGETS:
        value = get(evaluation, bench)
        status = "—" if value is None else ("met" if check(value) else "**missed**")
        rows.append((label, target, _fmt(value, unit), status))
    return rows


def _charts(evaluation: dict, bench: dict, out: Path) -> List[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    per_topic = evaluation.get("questions", {}).get("per_topic")
    if per_topic:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        topics = list(per_topic)
        ax.barh(topics, [per_topic[t] * 100 for t in topics], color="#3b7ea1")
        ax.axvline(95, color="#c0392b", linestyle="--", label="target 95%")
        ax.set_xlim(0, 100), ax.set_xlabel("correct answers (%)"), ax.set_title("Accuracy per topic")
        ax.legend(loc="lower right"), fig.tight_layout(), fig.savefig(out / "accuracy_per_topic.png", dpi=110)
        plt.close(fig), made.append("accuracy_per_topic.png")
    baselines = evaluation.get("baselines")
    if baselines:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = ["assistant", "BM25 baseline", "TF-IDF baseline"]
        values = [evaluation["questions"]["top1"], baselines.get("bm25"), baselines.get("tfidf")]
        ax.bar(names, [(v or 0) * 100 for v in values], color=["#2e8b57", "#999999", "#bbbbbb"])
        ax.set_ylim(0, 100), ax.set_ylabel("top-1 correct (%)"), ax.set_title("Assistant vs baselines")
        fig.tight_layout(), fig.savefig(out / "assistant_vs_baselines.png", dpi=110)
        plt.close(fig), made.append("assistant_vs_baselines.png")
    latencies = bench.get("single_user", {}).get("latencies_ms")
    if latencies:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(latencies, bins=50, color="#3b7ea1")
        ax.set_xlabel("round trip (ms)"), ax.set_ylabel("messages"), ax.set_title("Single-user latency")
        fig.tight_layout(), fig.savefig(out / "latency_distribution.png", dpi=110)
        plt.close(fig), made.append("latency_distribution.png")
    load = bench.get("load")
    if load:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([r["users"] for r in load], [r["throughput_per_s"] for r in load], marker="o", label="measured")
        ax.axhline(40, color="#c0392b", linestyle="--", label="target at 20 patients")
        ax.set_xlabel("concurrent patients"), ax.set_ylabel("messages / s"), ax.set_title("Throughput vs concurrency")
        ax.set_ylim(0, max(50, 1.2 * max(r["throughput_per_s"] for r in load))), ax.legend(loc="lower right")
        fig.tight_layout(), fig.savefig(out / "throughput_vs_concurrency.png", dpi=110)
        plt.close(fig), made.append("throughput_vs_concurrency.png")
    runs = list(bench.get("cluster", {}).get("runs", []))
    if runs:
        users = sorted({r["users"] for r in runs})
        fig, ax = plt.subplots(figsize=(6, 3.5))
        width = 0.38
        for offset, instances in ((-width / 2, 1), (width / 2, 2)):
            values = [next((r["throughput_per_s"] for r in runs if r["users"] == u and r["instances"] == instances), 0)
                      for u in users]
            bars = ax.bar([i + offset for i in range(len(users))], values, width,
                          label=f"{instances} Rasa instance{'s' if instances > 1 else ''}")
            ax.bar_label(bars, fmt="%.0f")
        ax.set_xticks(range(len(users)), [f"{u} patients" for u in users])
        ax.set_ylabel("answered messages / s"), ax.set_title("Cluster profile: 1 vs 2 instances")
        ax.legend(loc="lower right"), fig.tight_layout(), fig.savefig(out / "cluster_instances.png", dpi=110)
        plt.close(fig), made.append("cluster_instances.png")
    return made


def render(out: Path = REPORTS) -> Path:
    evaluation = _read(out / "evaluation.json")
    bench = _read(out / "benchmark.json")
    charts = _charts(evaluation, bench, out)
    lines = [
        "# How well and how fast the assistant answers",
        "",
        "Regenerated by `./run.sh evaluate` (accuracy and safety) and `./run.sh benchmark` (speed and load),",
        "both against the real assistant over its REST channel. Targets are goals, not test assertions.",
    ]
    lines += crisis2_section(evaluation, _read(out / "crisis-curve.json"))
    lines += written_apart_sections(evaluation)
    lines += reading_review_section(_read(out / "reading-review.json"), evaluation)
    lines += answer_choice_section(_read(out / "fact-answers.json"), _read(out / "runner-up.json"))
    lines += clinic_bar_section(_read(out / "clinic-bar.json"))
    lines += [
        "",
        "## The old evaluation set and the speed targets",
        "",
        "The old set (`evaluation/questions.yml`) is written in the training data's voice and was used to",
        "choose fixes: it measures regressions, not what patients will get.",
        "",
        "| measure | target | measured | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in target_rows(evaluation, bench)]
    q = evaluation.get("questions")
    if q:
        conv = evaluation.get("conversations", {})
        lines += [
            "",
            "## Accuracy and safety",
            "",
            f"{q['items']} single questions ({_counts(q['counts'])}) and {conv.get('items', 0)} conversation turns.",
            "",
            f"- Top-1 correct answer: {_fmt(q['top1'], 'pct')} (right topic: {_fmt(q['topic_top1'], 'pct')})",
            f"- Conversation turns answered correctly: {_fmt(conv.get('turn_accuracy'), 'pct')}",
            f"- Personal-advice referral rate: {_fmt(q['advice_referral'], 'pct')}",
            f"- Baselines, same set, same scoring of topic and route: BM25 {_fmt(evaluation['baselines']['bm25'], 'pct')},"
            f" TF-IDF {_fmt(evaluation['baselines']['tfidf'], 'pct')}",
        ]
        cv = evaluation.get("cross_validation")
        if cv:
            lines += [f"- NLU {cv['folds']}-fold cross-validation: intent F1 {cv['weighted_f1']:.3f} weighted,"
                      f" {cv['macro_f1']:.3f} macro (confusion matrix: `intent_confusion_matrix.png`)"]
        failures = evaluation.get("failures", [])
        if failures:
            lines += ["", "### Wrong answers", "", "| question | expected | got |", "|---|---|---|"]
            for f in failures[:40]:
                exp = f["expected"]
                expected = " ".join(str(x) for x in (exp["expect"], exp.get("topic"), exp.get("route")) if x)
                got = ", ".join(f.get("facts") or [r for r in f["got"] if r != "utter_disclaimer"]) or "nothing"
                lines.append(f"| {f['text']} | {expected} | {got} |")
    if bench:
        lines += ["", "## Speed and load", ""]
        su = bench.get("single_user", {})
        lines.append(f"- Single user, {su.get('messages')} messages: p50 {su.get('p50_ms')} ms, p95 {su.get('p95_ms')} ms,"
                     f" p99 {su.get('p99_ms')} ms")
        long = bench.get("long_conversation")
        if long:
            lines.append(f"- One patient, {long['turns']} turns in one conversation: p50 {long['first_10_p50_ms']} ms over"
                         f" the first 10 turns, {long['last_10_p50_ms']} ms over the last 10")
        memory = {key: (bench.get(key) or {}).get("processes") for key in ("memory_after_warmup", "memory_after_load")}
        for run in bench.get("load", []):
            lines.append(f"- {run['users']} concurrent patients for {run['seconds']} s: {run['throughput_per_s']} msg/s,"
                         f" p50 {run['p50_ms']} ms, p95 {run['p95_ms']} ms, {run['errors']} errors,"
                         f" {run['lost_replies']} lost replies")
        lines.append(f"- Memory (RSS, MB) after warm-up: {memory['memory_after_warmup']};"
                     f" after load: {memory['memory_after_load']}")
        lines.append(f"- Ready {bench.get('ready_seconds')} s after start; first answer {bench.get('first_answer_seconds')} s;"
                     f" cold training {bench.get('training_seconds')} s; model {bench.get('model_mb')} MB")
    lines += stock_comparison_section(bench)
    lines += profile_section(bench)
    lines += cluster_section(bench)
    lines += grouping_section(_read(out / "grouping.json"))
    if charts:
        lines += ["", "## Charts", ""] + [f"![{c[:-4].replace('_', ' ')}]({c})" for c in charts]
    if (out / "intent_confusion_matrix.png").exists():
        lines += ["", "![intent confusion matrix](intent_confusion_matrix.png)"]
    analysis = PROJECT_ROOT / "evaluation" / "analysis.md"
    if analysis.exists():
        lines += ["", analysis.read_text(encoding="utf-8").strip()]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# (label, key, target text, check, unit) for the patient sets; the locked part is the headline
PATIENT_TARGETS = [
    ("Answers correct", "answers_correct", "≥ 95%", lambda v: v >= 0.95, "pct"),
    ("In-scope sent to fallback", "in_scope_to_fallback", "≤ 3%", lambda v: v <= 0.03, "pct"),
    ("Two questions, both answered", "two_questions_both_answered", "—", None, "pct"),
    ("Declines", "declines", "≥ 95%", lambda v: v >= 0.95, "pct"),
    ("Decline precision", "decline_precision", "—", None, "pct"),
    ("Invented figures", "invented_figures", "0", lambda v: v == 0, "n"),
    ("Advice referrals", "advice_referrals", "100%", lambda v: v >= 1.0, "pct"),
    ("Disclaimer", "disclaimer", "100%", lambda v: v >= 1.0, "pct"),
]
CRISIS_TARGETS = [
    ("Crisis recall", "recall", "100%", lambda v: v >= 1.0, "pct"),
    ("The right help for the kind of crisis", "right_help", "—", None, "pct"),
    ("False alarms (ordinary messages)", "false_alarm_rate", "≤ 2%", lambda v: v <= 0.02, "pct"),
    ("Crisis turns with a knowledge answer", "crisis_with_knowledge_answer", "0", lambda v: v == 0, "n"),
    ("Disclaimer on crisis replies", "disclaimer", "100%", lambda v: v >= 1.0, "pct"),
]


def _status(value: Optional[float], check) -> str:
    if value is None or check is None:
        return ""
    return "met" if check(value) else "**missed**"


def _locked_vs_dev(targets, locked: dict, dev: dict) -> List[str]:
    """One row per measure: target, the locked figure (bold, met or missed) and the dev figure."""
    lines = ["| measure | target | **locked** | | dev |", "|---|---|---|---|---|"]
    for label, key, target, check, unit in targets:
        lines.append(f"| {label} | {target} | **{_fmt(locked.get(key), unit)}** | {_status(locked.get(key), check)} |"
                     f" {_fmt(dev.get(key), unit)} |")
    return lines


def _per_category(locked: dict, dev: dict, key: str, header: str, cells) -> List[str]:
    """A table of ``key``'s categories (locked and dev), each row's figures from ``cells(locked, dev)``."""
    names = sorted(set(locked.get(key, {})) | set(dev.get(key, {})))
    if not names:
        return []
    lines = ["", header, "|" + "---|" * (header.count("|") - 1)]
    for name in names:
        lines.append(f"| {name.replace('_', ' ')} | " + " | ".join(cells(locked.get(key, {}).get(name, {}),
                                                                     dev.get(key, {}).get(name, {}))) + " |")
    return lines


def _crisis_tables(targets, lc: dict, dc: dict) -> List[str]:
    """A crisis set's measures (locked and dev), recall and right help per category, false alarms
    per kind of ordinary message."""
    lines = _locked_vs_dev(targets, lc, dc)
    lines += _per_category(lc, dc, "recall_per_category",
                           "| crisis category | locked: recognised | locked: right help | dev: recognised | dev: right help |",
                           lambda locked, dev: [f"{locked.get('recognised', '—')}/{locked.get('turns', '—')}",
                                                f"{locked.get('right_help', '—')}/{locked.get('recognised', '—')}",
                                                f"{dev.get('recognised', '—')}/{dev.get('turns', '—')}",
                                                f"{dev.get('right_help', '—')}/{dev.get('recognised', '—')}"])
    lines += _per_category(lc, dc, "false_alarms_per_category",
                           "| ordinary messages | locked: false alarms | dev: false alarms |",
                           lambda locked, dev: [f"{locked.get('alarms', '—')}/{locked.get('turns', '—')}",
                                                f"{dev.get('alarms', '—')}/{dev.get('turns', '—')}"])
    return lines


def written_apart_sections(evaluation: dict) -> List[str]:
    """The sets written apart from the project: the locked part first (never read while fixing),
    the dev part (used for error analysis) beside it."""
    patients, crisis = evaluation.get("patients", {}), evaluation.get("crisis", {})
    if "locked" not in patients and "locked" not in crisis:
        return []
    lines = ["", "## Messages written apart from the project (headline: the locked part)", "",
             "Written by authors who never saw `data/`; the **locked** part was never read while fixing and",
             "is scored only here; the dev part was used for error analysis, so its figures are optimistic.", ""]
    if patients:
        lp, dp = patients.get("locked", {}), patients.get("dev", {})
        lines += [f"### Patient questions ({lp.get('turns', 0)} locked turns, {dp.get('turns', 0)} dev turns)", ""]
        lines += _locked_vs_dev(PATIENT_TARGETS, lp, dp)
        for name in ("bm25", "tfidf"):
            lines.append(f"| Baseline {name.upper()}: answers correct | — | {_fmt(lp.get('baselines', {}).get(name), 'pct')} |"
                         f" | {_fmt(dp.get('baselines', {}).get(name), 'pct')} |")
        voices = sorted(set(lp.get("per_voice", {})) | set(dp.get("per_voice", {})))
        if voices:
            lines += ["", "| voice | locked: answers correct | dev |", "|---|---|---|"]
            lines += [f"| {v.replace('_', ' ')} | {_fmt(lp.get('per_voice', {}).get(v), 'pct')} |"
                      f" {_fmt(dp.get('per_voice', {}).get(v), 'pct')} |" for v in voices]
    if crisis:
        lc, dc = crisis.get("locked", {}), crisis.get("dev", {})
        lines += ["", f"### Crisis and emergency messages ({lc.get('crisis_turns', 0)} crisis and "
                  f"{lc.get('ordinary_turns', 0)} ordinary locked turns)", ""]
        lines += _crisis_tables(CRISIS_TARGETS, lc, dc)
    staff = evaluation.get("staff", {})
    if staff:
        ls, ds = staff.get("locked", {}), staff.get("dev", {})
        lines += ["", f"### Privacy, forget me and talk to a person ({ls.get('turns', 0)} locked, "
                  f"{ds.get('turns', 0)} dev messages, incl. near-misses)", "",
                  "| measure | locked | dev |", "|---|---|---|"]
        for key, label in (("accuracy", "every message got the right reply"),
                           ("privacy_recall", "privacy questions: explained"),
                           ("privacy_precision", "explanations that were asked for"),
                           ("forget_me_recall", "forget me: confirmation asked"),
                           ("forget_me_precision", "confirmations that were asked for"),
                           ("talk_to_person_recall", "talk to a person: contact given"),
                           ("talk_to_person_precision", "contacts that were asked for")):
            lines.append(f"| {label} | {_fmt(ls.get(key), 'pct')} | {_fmt(ds.get(key), 'pct')} |")
        lines.append(f"| near-misses and questions that got one of these replies | "
                     f"{ls.get('other_false_triggers', '—')}/{ls.get('other_turns', '—')} | "
                     f"{ds.get('other_false_triggers', '—')}/{ds.get('other_turns', '—')} |")
    return lines


CRISIS2_TARGETS = CRISIS_TARGETS[:2] + [
    ("False alarms (ordinary messages)", "false_alarm_rate", "≤ 1%", lambda v: v <= 0.01, "pct"),
    ("Questions about suicide/overdose as a topic: answer + crisis line", "concern_replies", "100%",
     lambda v: v >= 1.0, "pct"),
] + CRISIS_TARGETS[3:]


def crisis2_section(evaluation: dict, curve: dict) -> List[str]:
    """The second independent crisis set (issue 18): the locked figures first, the right help per
    category, concern replies, and the recall / false-alarm curve the operating point came from."""
    crisis2 = evaluation.get("crisis2", {})
    if not crisis2 and not curve:
        return []
    lines = ["", "## Crisis layer on the second independent crisis set (headline: locked)", "",
             "`evaluation/crisis2/`: written before the round-two fixes by three authors who never saw `data/`,",
             "the crisis training files or the earlier sets (formal and elderly intent, means asked as dose",
             "questions, minors, someone else seen online, 'asking for a friend', calm warning signs, first-person",
             "overdose, crises inside logistics, mid-conversation one-liners; ordinary messages incl. questions",
             "about suicide and overdose as topics and personal medical questions). False alarms count ordinary",
             "messages; the ordinary turns before the crisis in a crisis conversation are counted apart."]
    if crisis2:
        lc, dc = crisis2.get("locked", {}), crisis2.get("dev", {})
        lines += ["", f"{lc.get('crisis_turns', 0)} crisis and {lc.get('ordinary_turns', 0)} ordinary locked turns; "
                  f"early alarms in crisis conversations: locked {lc.get('early_alarms_in_crisis_conversations', '—')},"
                  f" dev {dc.get('early_alarms_in_crisis_conversations', '—')}.", ""]
        lines += _crisis_tables(CRISIS2_TARGETS, lc, dc)
    if curve:
        chosen, configured = curve.get("chosen") or {}, curve.get("configured") or {}
        turns = curve.get("dev_turns", {})
        lines += ["", "### Recall against false alarms, per detector and combined (dev parts of both crisis sets)", "",
                  f"{turns.get('crisis', 0)} crisis and {turns.get('ordinary', 0)} ordinary dev turns, scored by "
                  "`python -m bot.evaluation.crisis_curve` with the classifier trained as `rasa train` trains it.",
                  f"The operating point is the combination with the highest recall at no more than "
                  f"{100 * curve.get('max_false_alarms', 0):.0f}% false alarms.", "",
                  "![recall against false alarms](crisis-curve.png)", "",
                  "| detector | whole message | one sentence | topic word needs | dev recall | dev false alarms | right help |",
                  "|---|---|---|---|---|---|---|"]
        shown = [p for p in curve.get("front", []) if p["detector"] != "combination"]
        shown += [p for p in curve.get("front", []) if p["detector"] == "combination"][:8]
        for p in shown + ([dict(configured, detector="**configured (config.yml)**")] if configured else []):
            lines.append(f"| {p['detector']} | {p['threshold']} | {p.get('sentence_threshold') or '—'} |"
                         f" {p.get('topic_threshold') or '—'} | {_fmt(p['recall'], 'pct')} | "
                         f"{_fmt(p['false_alarms'], 'pct')} | {_fmt(p['right_help'], 'pct')} |")
        if not chosen:
            lines += ["", f"No combination stays within {100 * curve.get('max_false_alarms', 0):.0f}% false alarms on the"
                      " dev parts; config.yml keeps the point in bold, recall first."]
        if chosen:
            lines += ["", f"Chosen: threshold {chosen['threshold']}, sentence {chosen['sentence_threshold']}, "
                      f"topic word {chosen['topic_threshold']} (dev recall {_fmt(chosen['recall'], 'pct')}, "
                      f"false alarms {_fmt(chosen['false_alarms'], 'pct')})."]
    return lines


REVIEW_CATEGORIES = ("correct", "partial", "wrong_topic", "wrong_route", "needless_decline", "needless_referral",
                     "correct_decline", "correct_referral", "false_alarm", "unsafe", "other")


def reading_review_section(review: dict, evaluation: dict) -> List[str]:
    """A person's reading of every locked patient reply against the articles (issue 19), beside
    the automatic score. Written by a reviewer who never saw the training data; only counts and
    general notes are kept (the locked messages stay out of the report)."""
    if not review:
        return []
    counts, total = review.get("counts", {}), review.get("total") or sum(review.get("counts", {}).values())
    automatic = evaluation.get("patients", {}).get("locked", {}).get("answers_correct")
    good = sum(counts.get(k, 0) for k in ("correct", "correct_decline", "correct_referral"))
    lines = ["", "### A reading review of every locked patient reply", "",
             f"A reviewer who never saw the training data read all {total} locked replies against the two articles"
             f" ({review.get('date', 'this round')}). Right (correct answer, correct decline or correct referral):"
             f" **{_fmt(good / total if total else None, 'pct')}**; the automatic score of the same replies:"
             f" {_fmt(automatic, 'pct')} (answers only).", "",
             "| reading | replies |", "|---|---|"]
    lines += [f"| {name.replace('_', ' ')} | {counts.get(name, 0)} |" for name in REVIEW_CATEGORIES if name in counts]
    issues = review.get("issues", {})
    if issues:
        lines += ["", "Also seen: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in issues.items()) + "."]
    notes = review.get("notes") or []
    if notes:
        lines += ["", "The reviewer's notes:", ""] + [f"- {note}" for note in notes]
    return lines


def answer_choice_section(facts: dict, runner_up: dict) -> List[str]:
    """How the fact ranker and the runner-up button were set, on the patient dev set."""
    if not facts and not runner_up:
        return []
    lines = ["", "### Choosing the fact that answers (patient dev set, offline)", ""]
    if facts:
        base, chosen = facts.get("nlu_topics_only", {}), facts.get("chosen", {})
        lines.append(f"Fact ranker over each fact's example questions: {facts.get('dev_questions')} dev questions,"
                     f" NLU's topic only {_fmt(base.get('answers_correct'), 'pct')}, with the ranker choosing the"
                     f" topic below NLU confidence {chosen.get('RANKER_OVERRULES_BELOW')} (margin"
                     f" {chosen.get('RANKER_MARGIN')}) {_fmt(chosen.get('answers_correct'), 'pct')}.")
    chosen = (runner_up or {}).get("chosen")
    if chosen:
        lines.append(f"Runner-up button: margin {chosen['margin']}, offered under {_fmt(chosen['offered'], 'pct')} of"
                     f" dev answers, rescuing {chosen['rescued']} of {chosen['questions']} questions.")
    return lines


def clinic_bar_section(bar: dict) -> List[str]:
    """How close a question must be to a clinic answer's examples (bot/evaluation/clinic_bar.py)."""
    if not bar.get("curve"):
        return []
    lines = ["", "### The clinic answers' similarity bar (evaluation/clinic/dev.yml, offline)", "",
             "Sample clinic answers approved beside the knowledge base; for each bar, the paraphrases that get their",
             "answer (right) or another one (wrong), and the questions that should get none - other uncovered",
             "subjects and the patient dev set's article questions - but do (false).", "",
             "| bar | right | wrong | false |", "|---|---|---|---|"]
    chosen = bar.get("chosen") or {}
    for row in bar["curve"]:
        mark = " **(chosen)**" if row["bar"] == chosen.get("bar") else ""
        lines.append(f"| {row['bar']:.2f}{mark} | {row['right']}/{row['paraphrases']} | {row['wrong']} | {row['false']} |")
    return lines


def cluster_section(bench: dict) -> List[str]:
    cluster = bench.get("cluster")
    if not cluster:
        return []
    if "skipped" in cluster:
        return ["", "## Several instances (cluster profile)", "", f"Not measured: {cluster['skipped']}"]
    lines = ["", "## Several instances (cluster profile)", "",
             "PostgreSQL, Redis and haproxy with two Rasa instances, then with one (rasa-2 and actions-2",
             f"stopped) in the same run, on a machine with {cluster.get('cores')} cores. Cores used = CPU seconds",
             "of each process (and its children) per second of the run.", "",
             "| instances | patients | msg/s | p50 | p95 | errors | lost "
             "| cores used: Rasa | actions | PostgreSQL | Redis | haproxy | all |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in cluster.get("runs", []):
        cores = run.get("cores_used", {})
        rasa = sum(v for k, v in cores.items() if k.startswith("rasa-"))
        actions = sum(v for k, v in cores.items() if k.startswith("actions-"))
        lines.append(f"| {run['instances']} | {run['users']} | {run['throughput_per_s']} | {run['p50_ms']} ms |"
                     f" {run['p95_ms']} ms | {run['errors']} | {run['lost_replies']} | {rasa:.2f} | {actions:.2f} |"
                     f" {cores.get('postgres', 0):.2f} | {cores.get('redis', 0):.2f} | {cores.get('balancer', 0):.2f} |"
                     f" {run.get('cores_used_total')} |")
    faults = cluster.get("faults")
    if faults:
        when = ", ".join(f"{f['name']} at {f['at_s']} s" for f in faults.get("faults", []))
        lines += ["", f"Fault test ({faults['patients']} patients over REST and web chat for 30 s; {when}):",
                  "", "| messages | answered exactly once | apology only | unanswered | answered twice | failed requests |"
                      " resends | reconnects | conversations intact in PostgreSQL |",
                  "|---|---|---|---|---|---|---|---|---|",
                  f"| {faults['messages']} | {faults['answered_once']} | {faults['apologised']} | {faults['unanswered']} |"
                  f" {faults['answered_twice']} | {faults.get('failed_requests', 'not counted')} | {faults['resends']} |"
                  f" {faults['reconnects']} | {faults['conversations_intact']}/{faults['conversations']} |",
                  "", "Failed requests: REST requests and phone webhooks that got no 200 (one in flight on the killed"
                      " instance is sent again by the balancer to the other)."]
    return lines


def grouping_section(grouping: dict) -> List[str]:
    """Grouping unanswered questions by meaning (python -m bot.evaluation.grouping)."""
    if not grouping:
        return []
    locked, dev = grouping["locked"], grouping["dev"]

    def row(name: str, part: dict, key: str) -> str:
        m = part[key]
        return f"| {name} | {m['purity'] * 100:.1f}% | {m['recall'] * 100:.1f}% | {m['groups']} |"

    lines = ["", "## Grouping unanswered questions by meaning (headline: locked)", "",
             f"The dashboard's groups (`bot/staff/clusters.py`) on the labelled paraphrases of `evaluation/grouping/`"
             f" (written apart from the project): locked {locked['meaning']['questions']} questions with"
             f" {locked['meaning']['labels']} labels, dev {dev['meaning']['questions']} with {dev['meaning']['labels']}."
             " **Purity**: per group made, the share of its questions carrying its most common label, weighted by"
             " size (merging different questions lowers it). **Recall**: per label, the share of its questions in"
             " the one group holding most of them, weighted by size (splitting paraphrases lowers it).",
             "", "| grouping | purity | recall | groups |", "|---|---|---|---|",
             row(f"**by meaning, locked** (all-MiniLM-L6-v2, distance {grouping['configured_distance']})", locked, "meaning"),
             row("by meaning, dev", dev, "meaning"),
             row(f"old: shared words (lemmas), locked (distance {grouping['words_distance']})", locked, "words"),
             row("old: shared words (lemmas), dev", dev, "words"), "",
             f"The distance was chosen on dev only: the best harmonic mean of purity and recall over cosine distances"
             f" {grouping['grid'][0]}-{grouping['grid'][-1]} is at {grouping['chosen_distance']}"
             + ("" if grouping["chosen_distance"] == grouping["configured_distance"]
                else f" (configured: {grouping['configured_distance']})") + "."
             f" Embedding the locked set's questions took {grouping['locked_seconds']} s here.",
             "", "| distance (dev) | purity | recall | groups |", "|---|---|---|---|"]
    lines += [f"| {r['distance']} | {r['purity'] * 100:.1f}% | {r['recall'] * 100:.1f}% | {r['groups']} |"
              for r in grouping["dev_curve"]
              if round(r["distance"] * 40) % 2 == 0 or r["distance"] == grouping["configured_distance"]]
    return lines


def _counts(counts: Dict[str, int]) -> str:
    names = {"answer": "about one route", "compare": "comparisons", "crisis": "crisis",
             "fallback": "out of scope", "advice": "personal advice"}
    return ", ".join(f"{n} {names.get(k, k)}" for k, n in counts.items())


def _read(path: Path) -> Dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
