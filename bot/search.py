"""Full-text search over the knowledge base (BM25 on spaCy lemmas).

Used when the intent classifier is unsure: the best-matching fact decides the
topic of the answer if its score clears a threshold, otherwise the assistant
falls back. Route words are left out of the query (they say *which* route, not
*what* about it); the route comes from the entity ruler instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

from rank_bm25 import BM25Okapi
from spacy.language import Language

from bot.knowledge import FactRecord, KnowledgeBase
from bot.nlp import ROUTE_LABEL


@dataclass(frozen=True)
class Hit:
    fact: FactRecord
    score: float


# spaCy's English stop list holds words that carry meaning here ("side effects", "how long",
# "first time", "wears off"); they stay searchable.
MEANINGFUL_STOP_WORDS = frozenset({"side", "long", "first", "before", "after", "off", "full", "down", "back"})


def search_terms(nlp: Language, text: str) -> List[str]:
    """Lemmas the index matches on: content words, route words left out."""
    doc = nlp(text.lower())
    route_tokens = {t.i for ent in doc.ents if ent.label_ == ROUTE_LABEL for t in ent}
    return [
        (t.lemma_ or t.text).lower()
        for t in doc
        if t.i not in route_tokens
        and (t.is_alpha or t.like_num)
        and (not t.is_stop or t.lower_ in MEANINGFUL_STOP_WORDS)
    ]


class SearchIndex:
    """BM25 index whose documents are facts enriched with their topic's keywords.

    A hit counts as confident only if it clears the score threshold *and* the
    question shares at least one curated keyword with the hit's topic, so a
    common word ("need", "offer") cannot pull in an unrelated fact.
    """

    def __init__(self, *, knowledge_base: KnowledgeBase, nlp: Language) -> None:
        self._nlp = nlp
        topics = {t.id: t for t in knowledge_base.topics()}
        self._topic_terms = {
            topic.id: set(search_terms(nlp, " ".join(topic.keywords))) | set(topic.keywords) for topic in topics.values()
        }
        self._facts: Sequence[FactRecord] = tuple(knowledge_base.facts())
        corpus = []
        for fact in self._facts:
            topic = topics[fact.topic]
            text = " ".join([fact.text, topic.title, " ".join(topic.keywords)])
            corpus.append(search_terms(nlp, text))
        self._bm25 = BM25Okapi(corpus)

    def query_terms(self, text: str) -> List[str]:
        return search_terms(self._nlp, text)

    def search(self, text: str, *, route: Optional[str] = None, limit: int = 5) -> List[Hit]:
        """Best facts for ``text``; with ``route``, only facts about that route."""
        terms = self.query_terms(text)
        if not terms:
            return []
        scores = self._bm25.get_scores(terms)
        ranked = sorted(
            (Hit(fact, float(score)) for fact, score in zip(self._facts, scores, strict=False) if score > 0),
            key=lambda hit: hit.score,
            reverse=True,
        )
        if route is not None:
            ranked = [hit for hit in ranked if route in hit.fact.routes]
        return ranked[:limit]

    def best(self, text: str, *, min_score: float, route: Optional[str] = None) -> Optional[Hit]:
        """The top hit if it is a confident match, else None."""
        hits = self.search(text, route=route, limit=1)
        if not hits or hits[0].score < min_score:
            return None
        if not set(self.query_terms(text)) & self._topic_terms[hits[0].fact.topic]:
            return None
        return hits[0]
