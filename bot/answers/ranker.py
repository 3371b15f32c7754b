"""Which fact answers the question: a ranker over facts, learned from each fact's example
questions (knowledge/questions/, stored with the knowledge base).

Each fact is represented by its example questions (and its own text); a question is compared
with all of them by TF-IDF over words and character n-grams (robust to typos and lay
spellings), and a fact scores the best similarity of any of its questions. The assistant uses
the scores to lead a reply with the fact that answers the question and, when the intent
classifier is unsure, to choose the topic (bot/answers/assistant.py).
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from bot.knowledge import FactRecord, KnowledgeBase


class FactRanker:
    """Over a knowledge base's facts, or over given ``facts`` and their ``questions`` (the clinic
    answers: bot/clinic/matcher.py)."""

    def __init__(self, *, knowledge_base: Optional[KnowledgeBase] = None, facts: Sequence[FactRecord] = (),
                 questions: Optional[Mapping[str, Sequence[str]]] = None) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion

        if knowledge_base is not None:
            facts, questions = knowledge_base.facts(kind=None), knowledge_base.fact_questions()
        self._facts: Tuple[FactRecord, ...] = tuple(facts)
        questions = questions or {}
        documents: List[str] = []
        owners: List[int] = []
        for index, fact in enumerate(self._facts):
            for text in (fact.text,) + tuple(questions.get(fact.id, ())):
                documents.append(text.lower())
                owners.append(index)
        self._owners = owners
        self._vectoriser = FeatureUnion([
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                      token_pattern=r"(?u)\b\w[\w']*\b")),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2)),
        ])
        self._matrix = self._vectoriser.fit_transform(documents)
        self.trained = bool(questions)
        self._last: Dict[str, Dict[str, float]] = {}

    def scores(self, text: str) -> Dict[str, float]:
        """Fact id -> the best cosine similarity between ``text`` and the fact's questions. A turn
        asks twice about the same text (its topic, then its leading fact): computed once."""
        if text not in self._last:
            self._last = {text: self._scores(text)}
        return self._last[text]

    def _scores(self, text: str) -> Dict[str, float]:
        if not text.strip():
            return {}
        query = self._vectoriser.transform([text.lower()])
        # Rows are l2-normalised per vectoriser; the union of two halves has norm sqrt(2).
        similarities = (self._matrix @ query.T).toarray().ravel() / 2.0
        best: Dict[str, float] = {}
        for owner, similarity in zip(self._owners, similarities):
            fact_id = self._facts[owner].id
            if similarity > best.get(fact_id, 0.0):
                best[fact_id] = float(similarity)
        return best

    def ranked(self, text: str, *, facts: Sequence[FactRecord] = ()) -> List[Tuple[FactRecord, float]]:
        """``facts`` (all by default) best first, with their scores."""
        scores = self.scores(text)
        pool = facts or self._facts
        return sorted(((f, scores.get(f.id, 0.0)) for f in pool), key=lambda pair: -pair[1])

    def topic_scores(self, text: str) -> Dict[str, float]:
        """Topic -> the best score of its facts."""
        result: Dict[str, float] = {}
        scores = self.scores(text)
        for fact in self._facts:
            result[fact.topic] = max(result.get(fact.topic, 0.0), scores.get(fact.id, 0.0))
        return result
