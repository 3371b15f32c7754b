"""Deciding what to answer: the logic behind every custom action.

The actions in ``actions/`` and the staff explain tool both call this module,
so what staff see explained is exactly what patients get.
"""
from __future__ import annotations

import dataclasses
import re

from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

from bot.clinic.matcher import ClinicMatcher
from bot.knowledge import FactRecord, KnowledgeBase, KnowledgeSnapshot, get_knowledge_base
from bot.knowledge.records import ROUTES, VERDICT
from bot.understanding.lexicon import load_lexicon
from bot.answers.replies import Message, Reply
from bot.understanding.nlu_data import DECLINE
from bot.answers.premises import wrong_premises
from bot.answers.ranker import FactRanker
from bot.answers.search import SearchIndex
from bot.ops.settings import Settings, get_settings

INTENT_PREFIX = "ask_"
FOLLOW_UP_INTENT = "ask_followup"
DEFAULT_FOLLOW_UP_TOPIC = "procedure"

# How many facts (a disagreement between the articles counts as one) go into a reply.
SINGLE_ROUTE_FACTS = 3
COMPARISON_SHARED_FACTS = 2
COMPARISON_FACTS_PER_ROUTE = 2
# A message answers at most this many topics; a question found inside a longer message is
# used when NLU is at least this sure of it.
MAX_TOPICS = 2
PART_MIN_CONFIDENCE = 0.3
# NLU's first two topics this close (in confidence): the runner-up is offered as one button.
# Chosen on the dev part of the patient set (bot/evaluation/runner_up.py; reports/runner-up.json).
RUNNER_UP_MARGIN = 0.15
# The fact ranker (bot/answers/ranker.py) chooses the topic instead of NLU when NLU's confidence is below
# RANKER_OVERRULES_BELOW and the ranker's best topic beats NLU's by RANKER_MARGIN (cosine
# similarity); RELEVANCE_WEIGHT: the facts' own words (BM25) beside the ranker when ordering a
# topic's facts. Chosen on the patient dev set (bot/evaluation/fact_answers.py).
RANKER_OVERRULES_BELOW = 0.9
RANKER_MARGIN = 0.1
RELEVANCE_WEIGHT = 0.02
# A one-topic answer: the fact that answers the question, at most two supporting facts, and no
# more than about this many characters (a fact that would pass it is left out).
ANSWER_MAX_CHARS = 500


@dataclass(frozen=True)
class Question:
    """One thing the patient asked: what NLU understood of it and the routes it names."""

    text: str
    intent: Optional[str] = None
    confidence: float = 0.0
    routes: Tuple[str, ...] = ()
    runner_up: Optional[Tuple[str, float]] = None  # NLU's second intent and its confidence


@dataclass(frozen=True)
class Context:
    """What the conversation was about: the last topic answered and its route (None: both)."""

    topic: Optional[str] = None
    route: Optional[str] = None


@dataclass(frozen=True)
class Ask:
    """A topic to answer, about one route or comparing both (leading with the direct answer);
    ``text``: the question, so the facts it is about come first."""

    topic: str
    route: Optional[str] = None
    lead: bool = False
    text: str = ""


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

    def __init__(self, *, knowledge_base: KnowledgeBase, settings: Settings, nlp_loader=None,
                 clinic: Optional[ClinicMatcher] = None) -> None:
        self.kb = knowledge_base
        self.settings = settings
        self.clinic = clinic  # the staff's approved clinic answers (bot/clinic/), when there are any
        self._nlp_loader = nlp_loader
        self._index: Optional[SearchIndex] = None
        self._ranker: Optional[FactRanker] = None
        self._by_id: Optional[Dict[str, FactRecord]] = None

    def _facts_by_id(self) -> Dict[str, FactRecord]:
        if self._by_id is None:
            self._by_id = {f.id: f for f in self.kb.facts(kind=None)}
        return self._by_id

    def warm(self) -> "Assistant":
        """Build what the first question would otherwise wait for (search index, fact ranker)."""
        _ = self.index, self.ranker
        if self.clinic is not None:
            self.clinic.best("")  # reads the approved clinic answers
        return self

    # -- helpers -----------------------------------------------------------------
    def topic_ids(self) -> List[str]:
        return [t.id for t in self.kb.topics()]

    @property
    def index(self) -> SearchIndex:
        """The search index, built on first use."""
        if self._index is None:
            from bot.understanding.nlp import load_pipeline

            loader = self._nlp_loader or (lambda: load_pipeline(str(self.settings.spacy_pipeline_path)))
            from bot.understanding.nlu_data import topic_examples

            self._index = SearchIndex(knowledge_base=self.kb, nlp=loader(), examples=topic_examples())
        return self._index

    def _units(self, facts: Sequence[FactRecord], limit: int, *, said: Sequence[FactRecord] = ()
               ) -> List[List[FactRecord]]:
        """Up to ``limit`` facts in curated order, keeping each disagreement whole, each point
        made once: a fact that says what the reply already says (``said``, or a fact taken
        before it) is left out (FactRecord.same_point).

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
            before = list(said) + [f for unit in units for f in unit]
            if any(f.id == other.id or f.same_point(other) for f in group for other in before):
                taken.update(f.id for f in group)
                continue
            if count and count + len(group) > limit:
                break
            taken.update(f.id for f in group)
            units.append(group)
            count += len(group)
            if count >= limit:
                break
        return units

    def _within(self, units: List[List[FactRecord]], limit: int) -> List[List[FactRecord]]:
        """The leading unit always; the following ones while the text stays within ``limit``."""
        kept = units[:1]
        for unit in units[1:]:
            if len(self._text(kept + [unit])) > limit:
                break
            kept.append(unit)
        return kept

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

    # -- understanding what was asked ------------------------------------------------
    def respond(self, *, question: Question, parts: Sequence[Question] = (), context: Context = Context()) -> Reply:
        """Answer a message: each question found in it (at most two topics), or else the whole
        message; the knowledge-base search or the fallback when no topic is clear."""
        asks = self.asks(question=question, parts=parts, context=context)
        if not asks:
            route = question.routes[0] if len(question.routes) == 1 else None
            return self.correct_premises(question.text, self.understand_or_fallback(text=question.text, route=route))
        replies: List[Reply] = []
        # A second topic's answer does not say again what the first said; the overview (a table
        # with a fact per aspect) goes first when it is one of them.
        for ask in sorted(asks, key=lambda a: not (a.topic == OVERVIEW_TOPIC and a.route is None)):
            replies.append(self.answer_ask(ask, said=tuple(f for r in replies for f in r.facts)))
        reply = combine(replies)
        return self.correct_premises(question.text, self.offer_runner_up(question, reply))

    def offer_runner_up(self, question: Question, reply: Reply) -> Reply:
        """Unsure between two topics (NLU's first two within RUNNER_UP_MARGIN): answer the best and
        offer the other as one button ("Or did you mean: how long it lasts?")."""
        if question.runner_up is None or reply.topic is None:
            return reply
        intent, confidence = question.runner_up
        topic = topic_for_intent(intent, self.topic_ids())
        if topic is None or topic in {f.topic for f in reply.facts} or question.confidence - confidence > RUNNER_UP_MARGIN:
            return reply
        title = next(t.title for t in self.kb.topics() if t.id == topic)
        offer = Message("utter_runner_up", {"topic_title": title[:1].lower() + title[1:],
                                            "buttons": [{"title": title, "payload": f"/{intent}"}]})
        return dataclasses.replace(reply, messages=reply.messages + (offer,))

    def correct_premises(self, text: str, reply: Reply) -> Reply:
        """A wrong premise the articles contradict is corrected first ("No - IM goes into a
        muscle of the upper arm..."), then the answer; never on a decline or fallback."""
        if reply.kind not in ("answer", "answers", "comparison", "search"):
            return reply
        known = self._facts_by_id()
        corrections = [known[p.fact] for p in wrong_premises(text) if p.fact in known]
        if not corrections:
            return reply
        # A correction the answer already states is only flagged ("Not quite."): no fact twice.
        flagged = any(f in reply.facts for f in corrections)
        messages = ((Message("utter_premise_flag"),) if flagged else ()) + tuple(
            Message("utter_premise", {"correction": f.text, "sources": self._sources([f])})
            for f in dict.fromkeys(corrections) if f not in reply.facts)
        return dataclasses.replace(reply, messages=messages + reply.messages,
                                   facts=tuple(dict.fromkeys(tuple(corrections) + reply.facts)))

    def asks(self, *, question: Question, parts: Sequence[Question], context: Context) -> List[Ask]:
        candidates = [p for p in parts if p.confidence >= PART_MIN_CONFIDENCE and self._topic_of(p, context)]
        found: List[Ask] = []
        for asked in candidates or [question]:
            topic = self._topic_of(asked, context)
            if topic is None:
                continue
            ask = self._ask(asked, topic, context)
            same = next((i for i, a in enumerate(found) if a.topic == topic), None)
            if same is not None:
                if found[same].route != ask.route:  # "100% with IV? and how much with IM?": compare
                    found[same] = Ask(topic, None, lead=False, text=f"{found[same].text} {ask.text}")
                continue
            found.append(ask)
            if len(found) == MAX_TOPICS:
                break
        return found

    def _topic_of(self, asked: Question, context: Context) -> Optional[str]:
        if asked.intent == FOLLOW_UP_INTENT:
            return context.topic if context.topic in self.topic_ids() else DEFAULT_FOLLOW_UP_TOPIC
        topic = topic_for_intent(asked.intent, self.topic_ids())
        if topic is None or asked.confidence >= RANKER_OVERRULES_BELOW or not self.ranker.trained:
            return topic
        # NLU is unsure: the facts' own example questions may know better which topic it is.
        scores = self.ranker.topic_scores(asked.text)
        best = max(scores, key=lambda candidate: scores[candidate]) if scores else topic
        return best if scores.get(best, 0.0) - scores.get(topic, 0.0) >= RANKER_MARGIN else topic

    @staticmethod
    def _ask(asked: Question, topic: str, context: Context) -> Ask:
        """Which route a question is about: the one it names; both when it compares them ("is
        the drip any safer?") or names none; the conversation's route when it follows up on it
        ("how long does that last then?")."""
        lexicon = load_lexicon()
        compares = lexicon.compares(asked.text)
        text = asked.text
        if asked.intent == FOLLOW_UP_INTENT:
            if len(asked.routes) == 1:
                return Ask(topic, asked.routes[0], text=text)
            route = other_route(context.route) if not asked.routes else None  # "and the other one?"
            return Ask(topic, route, lead=route is None and compares, text=text)
        if len(asked.routes) > 1 or compares:
            return Ask(topic, None, lead=True, text=text)
        if asked.routes:
            return Ask(topic, asked.routes[0], text=text)
        if context.route and lexicon.follows_up(asked.text):
            return Ask(topic, context.route, text=text)
        return Ask(topic, None, text=text)

    # -- knowledge answers --------------------------------------------------------
    def answer_ask(self, ask: Ask, *, said: Sequence[FactRecord] = ()) -> Reply:
        if ask.route:
            return self.answer(topic=ask.topic, route=ask.route, question=ask.text, said=said)
        if ask.topic == OVERVIEW_TOPIC and self._asks_the_difference(ask.text) and all(
                t in self.topic_ids() for t, _ in OVERVIEW_ASPECTS):
            return self.overview()
        return self.compare(topic=ask.topic, lead=ask.lead, question=ask.text, said=said)

    def _asks_the_difference(self, question: str) -> bool:
        """The overview answers "what's the difference?" (the routes topic's verdict, "the
        difference is the way in", is the fact that answers it, or none clearly does: "tell me
        about both"); another question of the topic ("is there a ketamine cream?", "do most
        clinics use IV?") gets its own fact instead."""
        if not question or not self.ranker.trained:
            return True
        ranked = self.ranker.ranked(question, facts=self.kb.facts(topic=OVERVIEW_TOPIC, kind=None))
        return not ranked or ranked[0][0].kind == VERDICT or ranked[0][1] < OVERVIEW_UNLESS_ABOVE

    def overview(self) -> Reply:
        """"What's the difference between IV and IM?": the way in, then onset, intensity, control,
        duration and absorption side by side (one fact per route and aspect, both sides of a
        disagreement between the articles), with the sources; laid out per channel by the domain."""
        verdicts = [[v] for v in self.kb.facts(topic=OVERVIEW_TOPIC, kind=VERDICT)][:1]
        values: dict = {"summary": self._text(verdicts)}
        used: List[FactRecord] = list(self._flat(verdicts))
        for topic, slot in OVERVIEW_ASPECTS:
            facts = self.kb.facts(topic=topic)
            for route in ROUTES:
                units = self._units([f for f in facts if f.routes == (route,)], 1)
                values[f"{slot}_{route}"] = self._text(units)
                used += self._flat(units)
        if not all(values.values()):  # an aspect without a fact of its own for a route: the plain comparison
            return self.compare(topic=OVERVIEW_TOPIC, lead=True)
        values["sources"] = self._sources(used)
        return Reply("comparison", (Message("utter_kb_overview", values),), topic=OVERVIEW_TOPIC, routes=ROUTES,
                     facts=tuple(dict.fromkeys(used)))

    def _relevant_first(self, facts: Sequence[FactRecord], question: str) -> List[FactRecord]:
        """The fact that answers the question first (the fact ranker, learned from each fact's
        example questions; the facts' own words break ties), then the rest in curated order:
        "is the Innerbloom blog medical advice?" gets that fact, not the author's biography."""
        if not question or not facts:
            return list(facts)
        relevance = self.index.relevance(question)
        ranked = self.ranker.scores(question) if self.ranker.trained else {}
        return sorted(facts, key=lambda f: (-(ranked.get(f.id, 0.0) + RELEVANCE_WEIGHT * relevance.get(f.id, 0.0)),
                                            f.position))

    @property
    def ranker(self) -> FactRanker:
        if self._ranker is None:
            self._ranker = FactRanker(knowledge_base=self.kb)
        return self._ranker

    def answer(self, *, topic: str, route: Optional[str], question: str = "", said: Sequence[FactRecord] = ()
               ) -> Reply:
        """Answer about one route, or compare both when ``route`` is None."""
        if route in ROUTES:
            ranked = self._relevant_first(self.kb.facts(topic=topic, route=route), question)
            units = self._within(self._units(ranked, SINGLE_ROUTE_FACTS, said=said), ANSWER_MAX_CHARS)
            facts = self._flat(units)
            message = Message("utter_kb_answer", {"answer": self._text(units), "sources": self._sources(facts)})
            return Reply("answer", (message,), topic=topic, routes=(route,), facts=facts)
        return self.compare(topic=topic, question=question, said=said)

    def compare(self, *, topic: str, lead: bool = False, question: str = "", said: Sequence[FactRecord] = ()
                ) -> Reply:
        """Both routes side by side. ``lead``: the patient asked which is faster, longer, safer...:
        the reply starts with the direct answer in one sentence (the topic's verdict in the
        knowledge base, which never chooses for the patient where the choice is personal)."""
        facts = self._relevant_first(self.kb.facts(topic=topic), question)
        verdicts = [[v] for v in self.kb.facts(topic=topic, kind=VERDICT)][:1] if lead else []
        if verdicts and question and facts and verdicts[0][0].same_point(facts[0]) and self.ranker.trained:
            # The fact that answers best makes the direct answer's point with its details: when
            # it matches the question better than the direct answer does ("why is the longer IV
            # session good?" - "...more time for working with the insights"), it is said instead.
            scores = self.ranker.scores(question)
            if scores.get(facts[0].id, 0.0) > scores.get(verdicts[0][0].id, 0.0):
                verdicts = []
        shared = verdicts + self._units([f for f in facts if f.is_shared], COMPARISON_SHARED_FACTS - len(verdicts),
                                        said=said)
        sides = {
            route: self._units([f for f in facts if f.routes == (route,)], COMPARISON_FACTS_PER_ROUTE,
                               said=tuple(said) + self._flat(shared))
            for route in ROUTES
        }
        if not all(sides.values()):
            # One route has nothing of its own on this topic: answer from everything in order.
            units = verdicts + self._units(list(facts), SINGLE_ROUTE_FACTS, said=tuple(said) + self._flat(verdicts))
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
        """Answer the topic of the best-matching fact or example question, when it is confident."""
        hit = self.index.best_topic(text, min_score=self.settings.search_min_score)
        if hit is None or hit.topic == DECLINE:
            return None
        # A question that names no route gets both routes for the matched topic.
        reply = self.answer(topic=hit.topic, route=route, question=text)
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

    def clinic_answer(self, *, text: str) -> Optional[Reply]:
        """An approved clinic answer whose example questions are close enough to ``text``."""
        found = self.clinic.match(text) if self.clinic is not None else None
        if found is None:
            return None
        reviewed = found.answer.reviewed_at.date().isoformat() if found.answer.reviewed_at else ""
        message = Message("utter_clinic_answer", {"answer": found.answer.text, "reviewed": reviewed})
        return Reply("clinic", (message,), facts=(found.fact,), search_score=found.score)

    def decline(self, *, text: str) -> Reply:
        """A question the articles don't cover: the clinic's own answer to it, or the honest decline."""
        return self.clinic_answer(text=text) or self.fallback(out_of_scope=True)

    def understand_or_fallback(self, *, text: str, route: Optional[str]) -> Reply:
        return self.clinic_answer(text=text) or self.search(text=text, route=route) or self.fallback()

    # -- safety ------------------------------------------------------------------------
    def personal_advice(self, *, text: str, route: Optional[str]) -> Reply:
        """No individual advice: the referral stands alone. When the message also asks a general
        question the knowledge base answers, that answer comes first, framed as general
        information - never a fact about safety, suitability or effectiveness, which would read as
        an answer to the personal question (``reassures``)."""
        referral = Message("utter_personal_advice")
        hit = self.index.best(text, min_score=self.settings.search_min_score, route=route)
        if hit is None or reassures(hit.fact):
            return Reply("advice", (referral,))
        candidates = [f for f in [hit.fact] + list(self.kb.facts(topic=hit.fact.topic)) if not reassures(f)]
        units = self._units(candidates, 1)
        facts = self._flat(units)
        general = Message("utter_kb_general", {"answer": self._text(units), "sources": self._sources(facts)})
        return Reply("advice", (general, referral), topic=hit.fact.topic, facts=facts, search_score=hit.score)

    def greeting(self) -> Reply:
        return Reply("greeting", (Message("utter_greet"),))


# "What's the difference between IV and IM?" (the routes topic, both routes) gets the overview:
# these topics side by side, each under its slot name in the domain's utter_kb_overview.
OVERVIEW_TOPIC = "routes"
# Another fact of that topic answers instead when the fact ranker matches it at least this well
# (cosine similarity to its example questions; "tell me about both" matches none: 0.13).
OVERVIEW_UNLESS_ABOVE = 0.2
OVERVIEW_ASPECTS = (("onset", "onset"), ("experience", "intensity"), ("control", "control"),
                    ("duration", "duration"), ("absorption", "absorption"))

# Topics whose facts say whether the treatment is safe, suitable or effective: after "I can't give
# advice about your own treatment" any of them reads as the answer to the personal question
# (a patient on lithium told "ketamine has a long safety record"), so none follows a referral.
REASSURING_TOPICS = frozenset({"safety", "effectiveness", "conditions", "depression", "choosing", "pain", "dosing",
                               "side_effects"})
_REASSURING_WORDS = re.compile(r"\b(safe|safer|safely|safety|suitable|suits?|effective|effectiveness|works?|"
                               r"helps?|recommended|risks?|well tolerated|tolerated|approved)\b", re.I)


def reassures(fact: FactRecord) -> bool:
    """A fact that could read as a verdict on the patient's own treatment."""
    return fact.topic in REASSURING_TOPICS or _REASSURING_WORDS.search(fact.text) is not None


def combine(replies: Sequence[Reply]) -> Reply:
    """One reply answering several topics; the conversation goes on about the last one."""
    if len(replies) == 1:
        return replies[0]
    last = replies[-1]
    return Reply("answers", tuple(m for r in replies for m in r.messages), topic=last.topic, routes=last.routes,
                 facts=tuple(f for r in replies for f in r.facts))


@lru_cache(maxsize=1)
def get_assistant() -> Assistant:
    """The process-wide assistant over the configured knowledge base (read once, then served
    from memory: bot.knowledge.KnowledgeSnapshot)."""
    from bot.clinic.store import get_clinic_store

    settings = get_settings()
    knowledge = KnowledgeSnapshot(get_knowledge_base(database_url=settings.database_url))
    clinic = ClinicMatcher(store=get_clinic_store(database_url=settings.database_url), knowledge_base=knowledge,
                           min_score=settings.clinic_answer_min_score)
    return Assistant(knowledge_base=knowledge, settings=settings, clinic=clinic)
