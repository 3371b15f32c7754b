"""Full-text search over the knowledge base (BM25 on spaCy lemmas).

Used when the intent classifier is unsure: the best match decides the topic of the
answer if its score clears a threshold, otherwise the assistant says plainly that it
cannot answer. Two kinds of documents are searched: the facts (with their topic's title
and keywords) and each topic's example questions (the NLU training examples), so a
question phrased like a patient's finds its topic even when it shares no word with the
articles. The lay vocabulary of knowledge/lexicon.yml widens a question: a phrase such as
"knackered" brings in its topic's keywords. Route words are left out of the query (they
say *which* route, not *what* about it); the route comes from the entity ruler instead.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

from rank_bm25 import BM25Okapi
from spacy.language import Language

from bot.knowledge import FactRecord, KnowledgeBase
from bot.understanding.lexicon import load_lexicon
from bot.understanding.nlp import doc_search_terms
from bot.understanding.nlu_data import DECLINE


@dataclass(frozen=True)
class Hit:
    fact: FactRecord
    score: float


@dataclass(frozen=True)
class TopicHit:
    topic: str
    score: float
    matched: str  # "fact" or "example"


def search_terms(nlp: Language, text: str) -> List[str]:
    """Lemmas the index matches on: content words, route words left out."""
    return doc_search_terms(nlp(text.lower()))


class SearchIndex:
    """BM25 indexes over the facts (enriched with their topic's keywords) and the topics'
    example questions.

    A hit counts as confident only if it clears the score threshold *and* the question
    shares at least one curated keyword or lay phrase with the hit's topic, so a common word
    ("need", "offer") cannot pull in an unrelated topic.
    """

    def __init__(self, *, knowledge_base: KnowledgeBase, nlp: Language,
                 examples: Optional[Mapping[str, Sequence[str]]] = None) -> None:
        self._nlp = nlp
        self._lexicon = load_lexicon()
        topics = {t.id: t for t in knowledge_base.topics()}
        self._topic_keywords = {t.id: search_terms(nlp, " ".join(t.keywords)) for t in topics.values()}
        # Terms of texts the NLU graph has already parsed (``remember_terms``): a bounded memory.
        self._known_terms: "OrderedDict[str, List[str]]" = OrderedDict()
        self._topic_terms = {
            topic.id: set(search_terms(nlp, " ".join(topic.keywords))) | set(topic.keywords)
            | {w for phrase in self._lexicon.topics.get(topic.id, ()) for w in search_terms(nlp, phrase)}
            for topic in topics.values()
        }
        self._facts: Sequence[FactRecord] = tuple(knowledge_base.facts())
        corpus = []
        for fact in self._facts:
            topic = topics[fact.topic]
            text = " ".join([fact.text, topic.title, " ".join(topic.keywords)])
            corpus.append(search_terms(nlp, text))
        self._bm25 = BM25Okapi(corpus)
        # The facts' own words only (no topic keywords): which facts of a topic a question is about.
        self._own_words = BM25Okapi([search_terms(nlp, fact.text) or ["-"] for fact in self._facts])
        # Example questions of the topics, and of what the articles do not cover (DECLINE): a
        # question closest to those is not answered from the knowledge base.
        self._examples = [(topic, text) for topic, texts in (examples or {}).items()
                          if topic in topics or topic == DECLINE for text in texts]
        self._example_bm25 = (BM25Okapi([search_terms(nlp, text) or ["-"] for _, text in self._examples])
                              if self._examples else None)

    KNOWN_TERMS = 256

    def remember_terms(self, text: str, terms: Sequence[str]) -> None:
        """The search terms of ``text`` as the NLU graph read them (the same pipeline, the same
        function): used instead of parsing ``text`` again."""
        self._known_terms[text] = list(terms)
        self._known_terms.move_to_end(text)
        while len(self._known_terms) > self.KNOWN_TERMS:
            self._known_terms.popitem(last=False)

    def terms(self, text: str) -> List[str]:
        known = self._known_terms.get(text)
        return list(known) if known is not None else search_terms(self._nlp, text)

    def query_terms(self, text: str) -> List[str]:
        """The question's terms, widened by the keywords of topics whose lay phrases it uses."""
        terms = self.terms(text)
        for topic in self._lexicon.topics_in(text):
            if topic in self._topic_keywords:
                terms += self._topic_keywords[topic]
        return terms

    def relevance(self, text: str) -> Dict[str, float]:
        """How much each fact's own words match ``text`` (fact id -> BM25 score; 0 for none)."""
        terms = self.terms(text)
        if not terms:
            return {}
        return {fact.id: float(score) for fact, score in zip(self._facts, self._own_words.get_scores(terms)) if score > 0}

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
        """The top fact if it is a confident match, else None."""
        hits = self.search(text, route=route, limit=1)
        if not hits or hits[0].score < min_score or not self._on_topic(text, hits[0].fact.topic):
            return None
        return hits[0]

    def best_topic(self, text: str, *, min_score: float) -> Optional[TopicHit]:
        """The topic of the best fact or example question, if it is a confident match."""
        terms = self.query_terms(text)
        if not terms:
            return None
        candidates: List[TopicHit] = []
        fact_scores = self._bm25.get_scores(terms)
        if len(fact_scores):
            index = max(range(len(fact_scores)), key=lambda i: fact_scores[i])
            candidates.append(TopicHit(self._facts[index].topic, float(fact_scores[index]), "fact"))
        if self._example_bm25 is not None:
            example_scores = self._example_bm25.get_scores(terms)
            index = max(range(len(example_scores)), key=lambda i: example_scores[i])
            candidates.append(TopicHit(self._examples[index][0], float(example_scores[index]), "example"))
        confident = [c for c in candidates if c.score >= min_score and self._on_topic(text, c.topic)]
        return max(confident, key=lambda c: c.score) if confident else None

    def _on_topic(self, text: str, topic: str) -> bool:
        return topic == DECLINE or bool(set(self.query_terms(text)) & self._topic_terms[topic])
