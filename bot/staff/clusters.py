"""Unanswered questions grouped by meaning, for the dashboard.

By meaning: each question becomes its all-MiniLM-L6-v2 sentence embedding (bot/staff/embeddings.py),
after the words patients use for one visit to the clinic ("infusion", "appointment", "visit",
"treatment") are read as "session" - the general model sees "how much is one infusion?" and "how
expensive is a visit" as 0.22 alike, the clinic's staff as one question (on the dev set this lifts
purity and recall alike, 0.68/0.58 to 0.70/0.60). Then scikit-learn's agglomerative clustering
with cosine distance and average linkage joins questions closer than ``MEANING_DISTANCE`` -
chosen on evaluation/grouping/dev.yml only (``python -m bot.evaluation.grouping``; the locked
set is scored in reports/report.md).

By shared words (the old grouping, and what the dashboard falls back to, saying so, when the
model cannot load): each question's lemmas (the project's spaCy pipeline, stop words dropped) as
normalised term counts - words and character n-grams of the lemmas together, so that "parking"
and "park" meet; no inverse document frequency (with a week's handful of questions it would make
the word the paraphrases share count least) - clustered the same way under ``WORDS_DISTANCE``.

Biggest groups first.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

MEANING_DISTANCE = 0.575  # chosen on evaluation/grouping/dev.yml (bot/evaluation/grouping.py)
VISIT_WORDS = re.compile(r"\b(?:infusion|session|visit|appointment|treatment)s?\b", re.IGNORECASE)
WORDS_DISTANCE = 0.75  # the lemma grouping's own threshold (tests/test_staff_records.py)
MAX_QUESTIONS = 2000  # the most recent ones: a 2000 x 2000 distance matrix, 32 MB
_CACHE_LIMIT = 20_000  # embeddings kept per process, so a dashboard reload embeds only new questions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cluster:
    count: int
    examples: List[str]  # up to five, most typical (closest to the group's centre) first
    members: Tuple[str, ...] = ()  # every question of the group (bot/evaluation/grouping.py scores them)


@dataclass(frozen=True)
class Grouping:
    clusters: List[Cluster]
    by_meaning: bool  # False: grouped by shared words because the model could not load
    problem: str = ""  # why not by meaning (one line, for staff)


@dataclass
class MeaningGrouper:
    """Groups by sentence embeddings; caches each text's embedding in the process."""

    encoder_loader: Callable  # () -> SentenceEncoder, raising EncoderUnavailable
    distance: float = MEANING_DISTANCE
    _cache: Dict[str, np.ndarray] = field(default_factory=dict)

    def at(self, distance: float) -> "MeaningGrouper":
        """The same grouper (and embeddings) at another distance."""
        return MeaningGrouper(encoder_loader=self.encoder_loader, distance=distance, _cache=self._cache)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(text for text in texts if text not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > _CACHE_LIMIT:
                self._cache.clear()
            vectors = self.encoder_loader().encode([VISIT_WORDS.sub("session", text) for text in missing])
            self._cache.update(zip(missing, vectors))
        return np.vstack([self._cache[text] for text in texts])

    def group(self, questions: Sequence[str]) -> List[Cluster]:
        """Questions with a word the model knows, by meaning; the others (random letters) only
        with the same text."""
        questions = _usable(questions)
        if not questions:
            return []
        encoder = self.encoder_loader()
        readable = [q for q in questions if encoder.knows_a_word(q)]
        unreadable = Counter(q for q in questions if not encoder.knows_a_word(q))
        clusters = [Cluster(count, [text], (text,) * count) for text, count in unreadable.items()]
        if len(readable) == 1:
            clusters.append(Cluster(1, readable, tuple(readable)))
        elif readable:
            vectors = self.embed(readable)
            clusters += agglomerate(readable, similarity=vectors @ vectors.T, distance=self.distance)
        return sorted(clusters, key=lambda c: (-c.count, c.examples[0]))


def group_by_words(questions: Sequence[str], *, nlp, distance: float = WORDS_DISTANCE) -> List[Cluster]:
    """The lemma grouping (shared words and their character n-grams)."""
    questions = _usable(questions)
    if len(questions) < 2:
        return [Cluster(1, list(questions), tuple(questions))] if questions else []
    return agglomerate(questions, similarity=word_similarity(questions, nlp=nlp), distance=distance)


def word_similarity(questions: Sequence[str], *, nlp) -> np.ndarray:
    """Cosine similarities of the questions' lemma features."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    from bot.understanding.nlp import lemmas

    texts = [" ".join(lemmas(nlp, q)) or q.lower() for q in questions]
    words = TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\b\w+\b", use_idf=False).fit_transform(texts)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), use_idf=False).fit_transform(texts)
    features = normalize(hstack([words, chars]).tocsr())  # sparse: thousands of n-gram columns
    return (features @ features.T).toarray()  # questions x questions only


def cluster_labels(similarity: np.ndarray, *, distance: float) -> np.ndarray:
    """Average-linkage cluster labels: groups join while their mean cosine distance is under ``distance``."""
    from sklearn.cluster import AgglomerativeClustering

    distances = np.clip(1.0 - similarity, 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    return AgglomerativeClustering(n_clusters=None, distance_threshold=distance, affinity="precomputed",
                                   linkage="average").fit_predict(distances)


def agglomerate(questions: List[str], *, similarity: np.ndarray, distance: float) -> List[Cluster]:
    """The dashboard's clusters: counts and up to five most typical examples, biggest first."""
    if not similarity.any():
        return [Cluster(len(questions), list(questions[:5]), tuple(questions))]
    labels = cluster_labels(similarity, distance=distance)
    clusters = []
    for label in set(labels):
        members = [i for i, value in enumerate(labels) if value == label]
        typical = sorted(members, key=lambda i: -float(similarity[i, members].sum()))
        examples = list(dict.fromkeys(questions[i] for i in typical))[:5]
        clusters.append(Cluster(len(members), examples, tuple(questions[i] for i in typical)))
    return sorted(clusters, key=lambda c: (-c.count, c.examples[0]))


def _usable(questions: Sequence[str]) -> List[str]:
    return [q for q in questions if q and q.strip()][-MAX_QUESTIONS:]


class QuestionGrouper:
    """What the dashboard calls: by meaning, or - when the model cannot load - by shared words,
    with the reason (logged once, shown to staff every time)."""

    def __init__(self, *, encoder_loader: Optional[Callable] = None, nlp_loader: Optional[Callable] = None) -> None:
        self._meaning = MeaningGrouper(encoder_loader=encoder_loader or default_encoder)
        self._nlp_loader = nlp_loader or default_nlp
        self._logged = False

    def group(self, questions: Sequence[str]) -> Grouping:
        from bot.staff.embeddings import EncoderUnavailable

        try:
            return Grouping(self._meaning.group(questions), by_meaning=True)
        except EncoderUnavailable as error:
            if not self._logged:
                log.warning("grouping by shared words: the sentence-embedding model cannot load (%s)", error)
                self._logged = True
            return Grouping(group_by_words(questions, nlp=self._nlp_loader()), by_meaning=False, problem=str(error))


def default_encoder():
    from bot.ops.settings import get_settings
    from bot.staff.embeddings import load_encoder

    return load_encoder(get_settings().grouping_model)


def default_nlp():
    from bot.understanding.nlp import load_pipeline
    from bot.ops.settings import get_settings

    return load_pipeline(str(get_settings().spacy_pipeline_path))
