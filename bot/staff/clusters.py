"""Unanswered questions grouped by similarity, for the dashboard.

Each question becomes its lemmas (the project's spaCy pipeline, stop words dropped) as
normalised term counts - words and character n-grams of the lemmas together, so that "parking"
and "park", "wi-fi" and "wifi" meet. No inverse document frequency: with the handful of questions
a clinic sees in a week it would make the word the paraphrases share ("wifi" in three of four
questions) count least. scikit-learn's agglomerative clustering with cosine distance and average
linkage then joins questions closer than ``distance``. Biggest groups first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

DISTANCE = 0.75  # cosine distance under which two groups join (tests/test_staff_records.py)
MAX_QUESTIONS = 2000  # the most recent ones: a 2000 x 2000 distance matrix, 32 MB


@dataclass(frozen=True)
class Cluster:
    count: int
    examples: List[str]  # up to five, most typical (closest to the group's centre) first


def _lemma_text(nlp, text: str) -> str:
    from bot.nlp import lemmas

    return " ".join(lemmas(nlp, text)) or text.lower()


def group_questions(questions: Sequence[str], *, nlp_loader: Optional[Callable] = None,
                    distance: float = DISTANCE) -> List[Cluster]:
    questions = [q for q in questions if q and q.strip()][-MAX_QUESTIONS:]
    if not questions:
        return []
    if len(questions) == 1:
        return [Cluster(1, list(questions))]
    import numpy as np
    from scipy.sparse import hstack
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    nlp = (nlp_loader or _default_nlp)()
    texts = [_lemma_text(nlp, q) for q in questions]
    words = TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\b\w+\b", use_idf=False).fit_transform(texts)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), use_idf=False).fit_transform(texts)
    features = normalize(hstack([words, chars]).tocsr())  # sparse: thousands of n-gram columns
    similarity = (features @ features.T).toarray()  # questions x questions only
    if not similarity.any():
        return [Cluster(len(questions), list(questions[:5]))]
    distances = np.clip(1.0 - similarity, 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    labels = AgglomerativeClustering(n_clusters=None, distance_threshold=distance, affinity="precomputed",
                                     linkage="average").fit_predict(distances)
    clusters = []
    for label in set(labels):
        members = [i for i, value in enumerate(labels) if value == label]
        typical = sorted(members, key=lambda i: -float(similarity[i, members].sum()))
        examples = list(dict.fromkeys(questions[i] for i in typical))[:5]
        clusters.append(Cluster(len(members), examples))
    return sorted(clusters, key=lambda c: (-c.count, c.examples[0]))


def _default_nlp():
    from bot.nlp import load_pipeline
    from bot.settings import get_settings

    return load_pipeline(str(get_settings().spacy_pipeline_path))
