"""Deciding what to answer: the logic behind every custom action.

The actions in ``actions/`` and the staff explain tool both call this module,
so what staff see explained is exactly what patients get.
"""
from __future__ import annotations

from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

from bot.knowledge import FactRecord, KnowledgeBase, get_knowledge_base
from bot.knowledge.records import ROUTES
from bot.replies import Message, Reply
from bot.search import Hit, SearchIndex
from bot.settings import Settings, get_settings

INTENT_PREFIX = "ask_"
FOLLOW_UP_INTENT = "ask_followup"
DEFAULT_FOLLOW_UP_TOPIC = "procedure"

# How many facts (a disagreement between the articles counts as one) go into a reply.
SINGLE_ROUTE_FACTS = 3
COMPARISON_SHARED_FACTS = 2
COMPARISON_FACTS_PER_ROUTE = 2


def topic_for_intent(intent: Optional[str], topics: Sequence[str]) -> Optional[str]:
    """``ask_onset`` -> ``onset`` when that topic exists."""
    if intent and intent.startswith(INTENT_PREFIX):
        topic = intent[len(INTENT_PREFIX):]
        if topic in topics:
            return topic
    return None


def other_route(route: Optional[str]) -> Optional[str]:
    if route not in ROUTES:
        return None
    return ROUTES[1 - ROUTES.index(route)]


class Assistant:
    """Composes replies from the knowledge base."""

    def __init__(self, *, knowledge_base: KnowledgeBase, settings: Settings, nlp_loader=None) -> None:
        self.kb = knowledge_base
        self.settings = settings
        self._nlp_loader = nlp_loader
        self._index: Optional[SearchIndex] = None

    # -- helpers -----------------------------------------------------------------
    def topic_ids(self) -> List[str]:
        return [t.id for t in self.kb.topics()]

    @property
    def index(self) -> SearchIndex:
        """The search index, built on first use."""
        if self._index is None:
            from bot.nlp import load_pipeline

            loader = self._nlp_loader or (lambda: load_pipeline(str(self.settings.spacy_pipeline_path)))
            self._index = SearchIndex(knowledge_base=self.kb, nlp=loader())
        return self._index

    def _units(self, facts: Sequence[FactRecord], limit: int) -> List[List[FactRecord]]:
        """Up to ``limit`` facts in curated order, keeping each disagreement whole.

        A fact that is part of a disagreement between the articles brings the
        other side with it, and the pair counts as ``limit`` facts' worth only if
        it is the first thing taken (both sides are always shown).
        """
        units: List[List[FactRecord]] = []
        taken: set = set()
        count = 0
        for fact in facts:
            if fact.id in taken:
                continue
            group = [f for f in facts if fact.conflict and f.conflict == fact.conflict] or [fact]
            if count and count + len(group) > limit:
                break
            taken.update(f.id for f in group)
            units.append(group)
            count += len(group)
            if count >= limit:
                break
        return units

    def _text(self, units: List[List[FactRecord]]) -> str:
        parts: List[str] = []
        for group in units:
            if len(group) > 1 and group[0].conflict:
                parts.append(self.kb.conflict(conflict_id=group[0].conflict).note)
            parts.extend(f.text for f in group)
        return " ".join(parts)

    @staticmethod
    def _sources(facts: Sequence[FactRecord]) -> str:
        return "; ".join(dict.fromkeys(f.source.citation for f in facts))

    @staticmethod
    def _flat(units: List[List[FactRecord]]) -> Tuple[FactRecord, ...]:
        return tuple(f for group in units for f in group)

    # -- knowledge answers --------------------------------------------------------
    def answer(self, *, topic: str, route: Optional[str]) -> Reply:
        """Answer about one route, or compare both when ``route`` is None."""
        if route in ROUTES:
            units = self._units(self.kb.facts(topic=topic, route=route), SINGLE_ROUTE_FACTS)
            facts = self._flat(units)
            message = Message("utter_kb_answer", {"answer": self._text(units), "sources": self._sources(facts)})
            return Reply("answer", (message,), topic=topic, routes=(route,), facts=facts)
        return self.compare(topic=topic)

    def compare(self, *, topic: str) -> Reply:
        """Both routes side by side: the trade-offs, never a verdict."""
        facts = self.kb.facts(topic=topic)
        shared = self._units([f for f in facts if f.is_shared], COMPARISON_SHARED_FACTS)
        sides = {
            route: self._units([f for f in facts if f.routes == (route,)], COMPARISON_FACTS_PER_ROUTE)
            for route in ROUTES
        }
        if not all(sides.values()):
            # One route has nothing of its own on this topic: answer from everything in order.
            units = self._units(list(facts), SINGLE_ROUTE_FACTS)
            used = self._flat(units)
            message = Message("utter_kb_answer", {"answer": self._text(units), "sources": self._sources(used)})
            return Reply("comparison", (message,), topic=topic, routes=ROUTES, facts=used)
        used = self._flat(shared) + self._flat(sides["iv"]) + self._flat(sides["im"])
        values = {
            "iv": self._text(sides["iv"]),
            "im": self._text(sides["im"]),
            "sources": self._sources(used),
        }
        if shared:
            values["summary"] = self._text(shared)
            message = Message("utter_kb_compare_summary", values)
        else:
            message = Message("utter_kb_compare", values)
        return Reply("comparison", (message,), topic=topic, routes=ROUTES, facts=used)

    def follow_up(self, *, routes: Sequence[str], last_topic: Optional[str], last_route: Optional[str]) -> Reply:
        """"and IM?" after a question about IV: same topic, the route just named."""
        topic = last_topic if last_topic in self.topic_ids() else DEFAULT_FOLLOW_UP_TOPIC
        if len(routes) == 1:
            route: Optional[str] = routes[0]
        elif not routes:
            route = other_route(last_route)  # "what about the other one?"
        else:
            route = None
        return self.answer(topic=topic, route=route)

    # -- search and fallback -------------------------------------------------------
    def search(self, *, text: str, route: Optional[str]) -> Optional[Reply]:
        """Answer from the best-matching fact when the match is confident."""
        hit: Optional[Hit] = self.index.best(text, min_score=self.settings.search_min_score, route=route)
        if hit is None:
            return None
        # A question that names no route gets both routes for the matched topic.
        reply = self.answer(topic=hit.fact.topic, route=route)
        return Reply(
            "search",
            reply.messages,
            topic=reply.topic,
            routes=reply.routes,
            facts=reply.facts,
            search_score=hit.score,
        )

    def fallback(self, *, out_of_scope: bool = False) -> Reply:
        """Say plainly what we cannot answer, point to the clinic, offer topics."""
        response = "utter_out_of_scope" if out_of_scope else "utter_fallback"
        return Reply("out_of_scope" if out_of_scope else "fallback", (Message(response),))

    def understand_or_fallback(self, *, text: str, route: Optional[str]) -> Reply:
        return self.search(text=text, route=route) or self.fallback()

    # -- safety ------------------------------------------------------------------------
    def personal_advice(self, *, text: str, route: Optional[str]) -> Reply:
        """No individual advice: refer to the clinician, plus general facts when we have them."""
        messages = [Message("utter_personal_advice")]
        hit = self.index.best(text, min_score=self.settings.search_min_score, route=route)
        facts: Tuple[FactRecord, ...] = ()
        if hit is not None:
            units = self._units([hit.fact] + list(self.kb.facts(topic=hit.fact.topic)), 1)
            facts = self._flat(units)
            messages.append(
                Message("utter_kb_general", {"answer": self._text(units), "sources": self._sources(facts)})
            )
        return Reply(
            "advice",
            tuple(messages),
            topic=hit.fact.topic if hit else None,
            facts=facts,
            search_score=hit.score if hit else None,
        )

    def greeting(self) -> Reply:
        return Reply("greeting", (Message("utter_greet"),))


@lru_cache(maxsize=1)
def get_assistant() -> Assistant:
    """The process-wide assistant over the configured knowledge base (created lazily)."""
    settings = get_settings()
    return Assistant(knowledge_base=get_knowledge_base(database_url=settings.database_url), settings=settings)
