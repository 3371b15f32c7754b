"""Recall against false alarms for each crisis detector and for their combination, on the dev
parts of the independent crisis sets (never the locked parts): how the operating point in
``config.yml`` (CrisisGuard's thresholds) is chosen, recall first.

The classifier is trained here exactly as ``rasa train`` trains it (bot/crisis/training plus
every NLU example as an ordinary message); sentences come from the project's spaCy pipeline,
as inside Rasa. Each message is scored once; every threshold is then applied to the cached
scores. Conversations are read turn by turn with the conversation memory.

    python -m bot.evaluation.crisis_curve [--out reports]

writes ``crisis-curve.json`` and ``crisis-curve.png`` (the report shows both).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from bot.crisis.classifier import CrisisClassifier, Score, training_examples
from bot.crisis.detector import CRISIS_INTENTS, CrisisDetector, Detection
from bot.crisis.patterns import load_patterns
from bot.evaluation.crisis import CONVERSATION_CATEGORIES
from bot.evaluation.sets import CRISIS_FAMILIES, CrisisTurn, load_crisis_set

# The grid: whole-message thresholds, and the (higher or equal) bar for one sentence.
THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
SENTENCE_THRESHOLDS = (0.7, 0.8, 0.9)
TOPIC_THRESHOLDS = (0.3, 0.5, 0.7, 0.8, 0.9)  # the classifier's support a topic word needs
MAX_FALSE_ALARMS = 0.01  # the operating point: the highest recall with at most this many false alarms


class CachedClassifier:
    """The classifier with its scores remembered per text (a sweep reads each text many times)."""

    def __init__(self, classifier: CrisisClassifier) -> None:
        self._classifier = classifier
        self._cache: Dict[str, Score] = {}

    def scores(self, texts: Iterable[str]) -> List[Score]:
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._classifier.scores(missing)))
        return [self._cache[t] for t in texts]


@dataclass(frozen=True)
class Point:
    detector: str
    threshold: float
    sentence_threshold: Optional[float]
    recall: float
    false_alarms: float
    right_help: float
    topic_threshold: Optional[float] = None


def train_classifier() -> CrisisClassifier:
    from bot.understanding.nlu_data import examples as nlu_examples

    examples = training_examples()
    examples += [(text, "none") for intent, text in nlu_examples() if intent not in CRISIS_INTENTS and text]
    return CrisisClassifier.train(examples)


def dev_turns(families: Sequence[str] = CRISIS_FAMILIES) -> Tuple[List[CrisisTurn], List[Tuple[CrisisTurn, ...]]]:
    messages: List[CrisisTurn] = []
    conversations: List[Tuple[CrisisTurn, ...]] = []
    for family in families:
        dataset = load_crisis_set("dev", family=family)
        messages += dataset.messages
        conversations += dataset.conversations
    return messages, conversations


def _run(detector: CrisisDetector, messages, conversations, sentences) -> List[Tuple[CrisisTurn, Detection]]:
    verdicts = [(turn, detector.detect(turn.text, sentences=sentences(turn.text))) for turn in messages]
    for conversation in conversations:
        previous: List[Optional[Detection]] = []
        for turn in conversation:
            detection = detector.in_context(detector.detect(turn.text, sentences=sentences(turn.text)), previous)
            previous.insert(0, detection)
            verdicts.append((turn, detection))
    return verdicts


def _point(name: str, threshold: float, sentence_threshold: Optional[float], verdicts,
           topic_threshold: Optional[float] = None) -> Point:
    crisis = [(t, d) for t, d in verdicts if t.expect == "crisis"]
    ordinary = [(t, d) for t, d in verdicts if t.expect != "crisis" and t.category not in CONVERSATION_CATEGORIES]
    found = [(t, d) for t, d in crisis if d.crisis]
    return Point(name, threshold, sentence_threshold,
                 round(len(found) / max(len(crisis), 1), 4),
                 round(sum(d.crisis for _, d in ordinary) / max(len(ordinary), 1), 4),
                 round(sum(d.help == t.help for t, d in found) / max(len(found), 1), 4), topic_threshold)


def sweep(classifier, messages, conversations, sentences, *, base: Dict[str, float]) -> List[Point]:
    patterns = _CachedPatterns(load_patterns())
    points: List[Point] = []
    never = 1.01  # a threshold no probability reaches: that part of the layer is off
    # Patterns alone (topic words always count, as without a classifier), no memory of scores.
    alone = CrisisDetector(patterns=patterns, classifier=None, context_turns=int(base["context_turns"]))
    points.append(_point("patterns", 0.0, None, _run(alone, messages, conversations, sentences)))
    for t in THRESHOLDS:
        common = dict(context_threshold=base["context_threshold"], concern=never, context_turns=0,
                      topic_threshold=never)
        whole = CrisisDetector(patterns=_NoPatterns(patterns), classifier=classifier, threshold=t,
                               sentence_threshold=never, sentence_support=never, **common)
        points.append(_point("classifier (whole message)", t, None, _run(whole, messages, conversations, sentences)))
        sentence = CrisisDetector(patterns=_NoPatterns(patterns), classifier=classifier, threshold=t,
                                  sentence_threshold=t, sentence_support=0.0, **common)
        points.append(_point("classifier (message or a sentence)", t, t,
                             _run(sentence, messages, conversations, sentences)))
        for s in sorted({x for x in SENTENCE_THRESHOLDS if x >= t} | {t}):
            for topic in TOPIC_THRESHOLDS:
                combined = CrisisDetector(patterns=patterns, classifier=classifier, threshold=t, sentence_threshold=s,
                                          sentence_support=min(base["sentence_support"], t),
                                          context_threshold=base["context_threshold"], concern=base["concern"],
                                          context_turns=int(base["context_turns"]), topic_threshold=topic)
                points.append(_point("combination", t, s, _run(combined, messages, conversations, sentences), topic))
    return points


class _CachedPatterns:
    """The pattern set with every answer remembered per text (the sweep reads each text many
    times); attributes that are not methods pass through."""

    def __init__(self, patterns) -> None:
        self._patterns = patterns
        self._cache: Dict[Tuple[str, str], object] = {}

    def __getattr__(self, name):
        attribute = getattr(self._patterns, name)
        if not callable(attribute):
            return attribute

        def cached(text: str):
            if (name, text) not in self._cache:
                self._cache[(name, text)] = attribute(text)
            return self._cache[(name, text)]
        return cached


class _NoPatterns:
    """A pattern set that matches nothing (the classifier alone), keeping the who/what rules."""

    def __init__(self, patterns) -> None:
        self._patterns = patterns

    def match(self, text: str) -> list:
        return []

    def __getattr__(self, name):
        return getattr(self._patterns, name)


def operating_point(points: Sequence[Point], *, max_false_alarms: float = MAX_FALSE_ALARMS) -> Optional[Point]:
    """Recall first: the combination with the highest recall at no more than ``max_false_alarms``,
    then the fewest false alarms, then the highest thresholds."""
    allowed = [p for p in points if p.detector == "combination" and p.false_alarms <= max_false_alarms]
    if not allowed:
        return None
    return max(allowed, key=lambda p: (p.recall, -p.false_alarms, p.right_help, p.threshold,
                                       p.sentence_threshold or 0.0))


def pareto(points: Sequence[Point]) -> List[Point]:
    """For a chart: per detector, the points no other point beats on both recall and false alarms."""
    front = []
    for p in points:
        if not any(q.detector == p.detector and q.recall >= p.recall and q.false_alarms <= p.false_alarms
                   and (q.recall, -q.false_alarms) != (p.recall, -p.false_alarms) for q in points):
            front.append(p)
    return sorted(front, key=lambda p: (p.detector, p.false_alarms, p.recall))


def chart(points: Sequence[Point], chosen: Optional[Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(p.detector for p in points):
        front = [p for p in pareto(points) if p.detector == name]
        axes.plot([100 * p.false_alarms for p in front], [100 * p.recall for p in front], marker="o", label=name)
    if chosen is not None:
        axes.scatter([100 * chosen.false_alarms], [100 * chosen.recall], s=160, facecolors="none",
                     edgecolors="black", linewidths=2, label="chosen operating point", zorder=5)
    axes.set_xlabel("false alarms on ordinary messages (%)")
    axes.set_ylabel("crisis messages recognised (%)")
    axes.set_title("Crisis layer on the dev parts: recall against false alarms")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def base_config() -> Dict[str, float]:
    from bot.crisis.component import CrisisGuard

    import yaml

    from bot.ops.settings import PROJECT_ROOT

    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    guard = next(c for c in config["pipeline"] if c["name"].endswith("CrisisGuard"))
    return {**CrisisGuard.get_default_config(), **{k: v for k, v in guard.items() if k != "name"}}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    from bot.understanding.nlp import load_pipeline
    from bot.ops.settings import get_settings

    nlp = load_pipeline(str(get_settings().spacy_pipeline_path))
    cache: Dict[str, List[str]] = {}

    def sentences(text: str) -> List[str]:
        if text not in cache:
            cache[text] = [s.text for s in nlp(text).sents]
        return cache[text]

    base = base_config()
    classifier = CachedClassifier(train_classifier())
    messages, conversations = dev_turns()
    points = sweep(classifier, messages, conversations, sentences, base=base)
    chosen = operating_point(points)
    configured = CrisisDetector(patterns=load_patterns(), classifier=classifier, threshold=base["threshold"],
                                sentence_threshold=base["sentence_threshold"], sentence_support=base["sentence_support"],
                                context_threshold=base["context_threshold"], concern=base["concern"],
                                context_turns=int(base["context_turns"]), topic_threshold=base["topic_threshold"])
    current = _point("configured (config.yml)", base["threshold"], base["sentence_threshold"],
                     _run(configured, messages, conversations, sentences), base["topic_threshold"])
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "dev_turns": {"crisis": sum(t.expect == "crisis" for t in messages)
                      + sum(t.expect == "crisis" for c in conversations for t in c),
                      "ordinary": sum(t.expect != "crisis" for t in messages)
                      + sum(t.expect != "crisis" for c in conversations for t in c)},
        "max_false_alarms": MAX_FALSE_ALARMS,
        "chosen": chosen.__dict__ if chosen else None,
        "configured": current.__dict__,
        "front": [p.__dict__ for p in pareto(points)],
    }
    (args.out / "crisis-curve.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    chart(points + [replace(current, detector="configured (config.yml)")], chosen, args.out / "crisis-curve.png")
    print(json.dumps({k: result[k] for k in ("dev_turns", "chosen", "configured")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
