"""BM25 search over the knowledge base on spaCy lemmas."""
from __future__ import annotations

import pytest

from bot.ops.settings import get_settings


@pytest.mark.parametrize(
    "question, topic",
    [
        ("my veins are hard to find", "needles"),
        ("will I feel nauseous or get a headache afterwards", "side_effects"),
        ("can they slow it down if I panic", "control"),
        ("what percentage of it ends up in the bloodstream", "absorption"),
        ("does it relieve fibromyalgia pain", "pain"),
        ("are there preparation sessions with a therapist", "preparation"),
        ("is it used for PTSD", "conditions"),
    ],
)
def test_paraphrases_find_the_right_topic(assistant, question, topic):
    hit = assistant.index.best(question, min_score=get_settings().search_min_score)
    assert hit is not None and hit.fact.topic == topic


@pytest.mark.parametrize(
    "question",
    [
        "asdkjh qwe", "how much does it cost", "do you take insurance", "what's the weather",
        "how many sessions will I need", "do you offer nasal spray", "do I need someone to take me home",
    ],
)
def test_unrelated_questions_are_not_confident(assistant, question):
    assert assistant.index.best(question, min_score=get_settings().search_min_score) is None


def test_route_filter_keeps_only_that_route(assistant):
    hits = assistant.index.search("how fast does it start", route="im")
    assert hits and all("im" in h.fact.routes for h in hits)


def test_route_words_are_not_search_terms(assistant):
    assert assistant.index.query_terms("how fast is the drip") == ["fast"]
