"""Crisis detection: many phrasings caught, ordinary questions left alone."""
from __future__ import annotations

import pytest

from bot.safety import is_crisis

CRISIS = [
    "I want to kill myself",
    "i want to kill my self",
    "I've been thinking about suicide",
    "suicidal thoughts again",
    "I want to end my life",
    "I'm going to end it all tonight",
    "I don't want to live anymore",
    "I dont want to be alive",
    "I want to die",
    "everyone would be better off without me",
    "there's no reason to live",
    "I can't go on",
    "I’ve been hurting myself",
    "I keep cutting myself",
    "self-harm urges",
    "I took too much and can't breathe",
    "I think I overdosed",
    "took too many of my pills",
    "I cant breathe",
    "having trouble breathing after the infusion",
    "my husband is not breathing",
    "I have chest pain",
    "she passed out and won't wake up",
    "he's unconscious",
    "I'm having a seizure",
    "this is an emergency",
    "I need an ambulance",
    "life isn't worth living",
    "I want to take my own life",
    "Help, my lips are turning blue",
    "honestly I'd prefer to be dead",
    "some days I wish I were dead",
    "there's no point living like this",
]

NOT_CRISIS = [
    "which is faster?",
    "is IV safer than IM",
    "what are the side effects?",
    "I'm scared of needles",
    "can they slow it down if I panic?",
    "how long does the shot last",
    "which is better for chronic pain?",
    "does it help with depression",
    "can I take it with my antidepressants",
    "what if it gets too intense",
]


@pytest.mark.parametrize("text", CRISIS)
def test_crisis_phrasings_are_caught(text):
    assert is_crisis(text)


@pytest.mark.parametrize("text", NOT_CRISIS)
def test_ordinary_questions_are_not_crises(text):
    assert not is_crisis(text)
