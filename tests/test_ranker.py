"""The fact ranker (bot/answers/ranker.py): each fact's example questions (knowledge/questions/) decide
which fact leads the answer, and - when NLU is unsure - which topic it is."""
from __future__ import annotations

from collections import Counter

import pytest

from bot.answers.assistant import ANSWER_MAX_CHARS, Context, Question
from bot.answers.ranker import FactRanker


def test_every_fact_has_at_least_ten_example_questions(kb):
    questions = kb.fact_questions()
    short = [f.id for f in kb.facts(kind=None) if len(questions.get(f.id, ())) < 10]
    assert not short, short


def test_no_example_question_is_given_to_two_facts(kb):
    counts = Counter(q.lower() for texts in kb.fact_questions().values() for q in texts)
    assert not [q for q, n in counts.items() if n > 1]


def test_each_facts_own_questions_rank_it_first_most_of_the_time(kb):
    """Leave-one-out would be stricter; this catches questions filed under the wrong fact."""
    ranker = FactRanker(knowledge_base=kb)
    questions = kb.fact_questions()
    hits = total = 0
    for fact in kb.facts(kind=None):
        for text in questions.get(fact.id, ())[:3]:
            best, _ = ranker.ranked(text, facts=kb.facts(topic=fact.topic, kind=None))[0]
            hits += best.id == fact.id
            total += 1
    assert hits / total >= 0.8


@pytest.mark.parametrize("text, topic, route, fact", [
    ("how long does the actual jab take?", "duration", "im", "duration-im-injection"),
    ("with the drip, does all of it get into my blood?", "absorption", "iv", "absorption-iv"),
])
def test_the_reply_leads_with_the_fact_that_answers(assistant, text, topic, route, fact):
    reply = assistant.answer(topic=topic, route=route, question=text)
    assert reply.facts[0].id == fact
    assert len(reply.messages[0].values["answer"]) <= ANSWER_MAX_CHARS + 200  # the lead may be long alone
    assert len(reply.facts) <= 3


def test_one_topic_answers_stay_short(assistant, kb):
    for topic in {f.topic for f in kb.facts()}:
        for route in ("iv", "im"):
            facts = kb.facts(topic=topic, route=route)
            if not facts:
                continue
            reply = assistant.answer(topic=topic, route=route, question="tell me")
            units_text = reply.messages[0].values["answer"]
            assert len(units_text) <= ANSWER_MAX_CHARS or len(reply.facts) == 1 or reply.facts[0].conflict, topic


def test_an_unsure_intent_is_overruled_by_the_facts_questions(assistant):
    unsure = Question("how long does the actual jab take?", "ask_procedure", 0.2, ("im",))
    reply = assistant.respond(question=unsure, context=Context())
    assert reply.topic == "duration", [f.id for f in reply.facts]
    sure = Question("how long does the actual jab take?", "ask_procedure", 0.95, ("im",))
    assert assistant.respond(question=sure, context=Context()).topic == "procedure"
