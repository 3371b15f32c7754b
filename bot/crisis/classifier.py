"""The learned half of the crisis layer: a calibrated classifier on word and character n-grams.

Four classes - ``none`` and the three kinds of help (``self``, ``medical``, ``other``) - so
one model says both *whether* a message is a crisis (1 - P(none)) and *what help* it needs.
Character n-grams make it robust to typos and slang ("kil myslef", "unaliv"); word
bigrams catch phrasing ("took the lot"). Probabilities are calibrated (sigmoid, 5-fold), so
one threshold means the same thing across classes. It reads text as the patterns do:
normalised, with the curated harmless phrases ("overdosed on forum threads", "this waiting
list is killing me") blanked out, in training and in use alike.

Training examples: ``bot/crisis/training/*.yml`` (crisis and hard negatives written for it),
plus every ordinary question of the NLU training data as a negative, when given.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy

from bot.crisis.examples import load_crisis_file
from bot.crisis.patterns import PatternSet, load_patterns, normalise

TRAINING_DIR = Path(__file__).with_name("training")
LABELS = ("none", "self", "medical", "other")


@dataclass(frozen=True)
class Score:
    crisis: float  # P(any crisis) = 1 - P(none)
    help: str  # the most likely kind of help
    medical: float = 0.0  # P(the writer's own medical emergency)
    self_: float = 0.0  # P(suicidal thoughts or self-harm of the writer)
    other: float = 0.0  # P(someone else in danger)


def training_examples(directory: Path = TRAINING_DIR) -> List[Tuple[str, str]]:
    """(text, label) for every example in the training files; label is none/self/medical/other."""
    examples = []
    for path in sorted(directory.glob("*.yml")):
        messages, conversations = load_crisis_file(path)
        for turn in list(messages) + [t for c in conversations for t in c]:
            examples.append((turn.text, turn.help if turn.expect == "crisis" else "none"))
    return examples


def prepare(text: str, patterns: PatternSet) -> str:
    return patterns.blank_exclusions(normalise(text))


class CrisisClassifier:
    def __init__(self, model, patterns: PatternSet) -> None:
        self._model = model
        self._patterns = patterns
        self._columns = [list(model.classes_).index(label) for label in LABELS]

    @classmethod
    def train(cls, examples: Sequence[Tuple[str, str]], *, seed: int = 42,
              patterns: Optional[PatternSet] = None) -> "CrisisClassifier":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, make_pipeline

        patterns = patterns or load_patterns()
        texts = [prepare(text, patterns) for text, _ in examples]
        labels = [label for _, label in examples]
        missing = set(LABELS) - set(labels)
        if missing:
            raise ValueError(f"the crisis classifier needs examples of every class; none of {sorted(missing)}")
        features = FeatureUnion([
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1, sublinear_tf=True,
                                      token_pattern=r"(?u)\b\w[\w']*\b")),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
        ])
        classifier = LogisticRegression(C=8.0, class_weight="balanced", max_iter=3000, random_state=seed)
        model = make_pipeline(features, CalibratedClassifierCV(classifier, method="sigmoid", cv=5))
        model.fit(texts, numpy.array(labels))
        return cls(model, patterns)

    def scores(self, texts: Iterable[str]) -> List[Score]:
        texts = [prepare(t, self._patterns) for t in texts]
        if not texts:
            return []
        from sklearn import config_context

        with config_context(assume_finite=True):  # n-gram counts of text: finite, no need to check
            rows = self._model.predict_proba(texts)
        result = []
        for row in rows:
            probabilities = [row[i] for i in self._columns]
            crisis = 1.0 - probabilities[0]
            best = max(range(1, len(LABELS)), key=lambda i: probabilities[i])
            result.append(Score(round(float(crisis), 4), LABELS[best], medical=round(float(probabilities[2]), 4),
                                self_=round(float(probabilities[1]), 4), other=round(float(probabilities[3]), 4)))
        return result

    def save(self, path: Path) -> None:
        import joblib

        joblib.dump(self._model, path)

    @classmethod
    def load(cls, path: Path, patterns: Optional[PatternSet] = None) -> "CrisisClassifier":
        import joblib

        return cls(joblib.load(path), patterns or load_patterns())
