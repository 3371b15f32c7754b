"""The trained model, loaded in-process: understanding, crisis override, explain mode."""
from __future__ import annotations

import asyncio

import pytest


@pytest.fixture(scope="module")
def explainer(trained_model, assistant):
    from bot.staff.explain import Explainer

    return Explainer(model=trained_model, assistant=assistant)


@pytest.fixture(scope="module")
def parse(explainer):
    loop = asyncio.new_event_loop()

    def _parse(text: str) -> dict:
        return loop.run_until_complete(explainer.agent.parse_message(text))

    yield _parse
    loop.close()


@pytest.mark.parametrize(
    "text, intent, routes",
    [
        ("which is faster?", "ask_onset", []),
        ("wich is fastr", "ask_onset", []),
        ("what if I'm scared of needles?", "ask_needles", []),
        ("how long does the shot last?", "ask_duration", ["im"]),
        ("is more absorbed with the drip?", "ask_absorption", ["iv"]),
        ("can they slow it down if I panic?", "ask_control", []),
        ("which is better for chronic pain?", "ask_pain", []),
        ("it's my first time, which should I pick?", "ask_first_time", []),
        ("what are the side effects?", "ask_side_effects", []),
        ("how do I prepare?", "ask_preparation", []),
        ("does a needle in the arm work faster than through a vein?", "ask_onset", ["im", "iv"]),
        ("is the jab safe?", "ask_safety", ["im"]),
        ("what about the injection?", "ask_followup", ["im"]),
        ("and IM?", "ask_followup", ["im"]),
        ("are you a bot?", "bot_challenge", []),
        ("what can you do?", "capabilities", []),
        ("do you take insurance?", "out_of_scope", []),
        ("what dose should I take?", "personal_advice", []),
    ],
)
def test_patient_questions_are_understood(parse, text, intent, routes):
    result = parse(text)
    assert result["intent"]["name"] == intent
    assert [e["value"] for e in result["entities"] if e["entity"] == "route"] == routes


@pytest.mark.parametrize(
    "text, intent",
    [
        ("which is faster? also I want to kill myself", "crisis_self"),
        ("how long does the shot last, I took too much and can't breathe", "crisis_medical"),
        ("thanks. I've been thinking about suicide", "crisis_self"),
        ("is IV safe? my friend is unconscious", "crisis_other"),
    ],
)
def test_crisis_beats_every_other_intent(parse, text, intent):
    result = parse(text)
    assert result["intent"] == {"name": intent, "confidence": 1.0}
    assert result["intent_ranking"][0]["name"] == intent
    assert result["crisis"]["crisis"] is True and result["crisis"]["detector"] in ("pattern", "classifier")


@pytest.mark.parametrize("text", ["asdkjh qwe zzx", "blorp flimflam"])
def test_gibberish_is_not_answered_as_a_topic(parse, text):
    assert not parse(text)["intent"]["name"].startswith("ask_")


def test_explain_mode_shows_intent_route_facts_and_reply(explainer):
    loop = asyncio.new_event_loop()
    try:
        first = loop.run_until_complete(explainer.explain("how fast does IV work?"))
        follow = loop.run_until_complete(explainer.explain("and IM?"))
    finally:
        loop.close()
    shown = first.render()
    assert "ask_onset" in shown and "route      : iv" in shown
    assert "fact       : onset-iv [iv] from Innerbloom" in shown
    assert "4 to 5 minutes" in shown and "not medical advice" in shown
    assert follow.action == "action_answer_question" and follow.routes == ["im"]
    assert follow.reply.topic == "onset" and "1 to 2 minutes" in "\n".join(follow.messages)


@pytest.mark.parametrize(
    "text, intent",
    [
        ("the other one?", "ask_followup"),
        ("is ketamine addictive?", "out_of_scope"),
        ("is IM stronger", "ask_experience"),
    ],
)
def test_known_confusions_stay_fixed(parse, text, intent):
    assert parse(text)["intent"]["name"] == intent


@pytest.mark.parametrize("component, edited", [
    ("bot.crisis.component.CrisisGuard", "bot/crisis/training/ordinary_extra.yml"),
    ("bot.crisis.component.CrisisGuard", "bot/crisis/patterns.yml"),
    ("bot.rasa.components.TopicClassifier", "knowledge/lexicon.yml"),
])
def test_editing_a_components_own_files_changes_its_training_cache_key(tmp_path, monkeypatch, component, edited):
    """Rasa caches a trained component by its config and Rasa's training data: files a component
    reads itself must be in its key, or an edited crisis example would silently keep the old
    classifier (it did, before fingerprint_addon)."""
    import importlib
    import shutil

    from rasa.engine.training.fingerprinting import calculate_fingerprint_key

    import bot.ops.training
    from bot.ops.settings import PROJECT_ROOT

    for name in ("bot/crisis", "knowledge/lexicon.yml", "bot/understanding/lexicon.py"):
        source, target = PROJECT_ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    monkeypatch.setattr(bot.ops.training, "PROJECT_ROOT", tmp_path)
    module, name = component.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    before = calculate_fingerprint_key(cls, {}, {})
    assert calculate_fingerprint_key(cls, {}, {}) == before
    with open(tmp_path / edited, "a", encoding="utf-8") as handle:
        handle.write("\n# edited\n")
    assert calculate_fingerprint_key(cls, {}, {}) != before


def _counting_parses(monkeypatch):
    """Count the docs every spaCy pipeline makes (the real pipelines still run)."""
    import spacy.language

    made = []
    call, pipe = spacy.language.Language.__call__, spacy.language.Language.pipe

    def counted_call(self, *args, **kwargs):
        made.append(1)
        return call(self, *args, **kwargs)

    def counted_pipe(self, texts, *args, **kwargs):
        for doc in pipe(self, texts, *args, **kwargs):
            made.append(1)
            yield doc

    monkeypatch.setattr(spacy.language.Language, "__call__", counted_call)
    monkeypatch.setattr(spacy.language.Language, "pipe", counted_pipe)
    return made


STORY_AND_TWO_QUESTIONS = ("I've had depression for years and my GP finally referred me. How long does the "
                           "injection last? And what are the side effects?")


@pytest.mark.parametrize("text", ["which is faster, IV or IM?", STORY_AND_TWO_QUESTIONS,
                                  "how long does the drip take, and is the shot safer?"])
def test_the_nlu_graph_parses_a_message_once_questions_included(parse, monkeypatch, text):
    parse("warm up")  # the components' own one-off loading is not a message's parse
    made = _counting_parses(monkeypatch)
    parsed = parse(text)
    assert len(made) == 1
    if text != "which is faster, IV or IM?":
        assert len(parsed["questions"]) == 2  # each question understood from the same doc


def test_search_terms_in_the_parse_are_the_searchs_own(parse, nlp):
    from bot.answers.search import search_terms

    parsed = parse(STORY_AND_TWO_QUESTIONS)
    assert parsed["search_terms"] == search_terms(nlp, STORY_AND_TWO_QUESTIONS)
    for question in parsed["questions"]:
        assert question["search_terms"] == search_terms(nlp, question["text"]) and question["search_terms"]


def test_a_whole_turn_parses_the_message_once_actions_included(explainer, monkeypatch):
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(explainer.explain("warm up: how long does IV last?"))
        made = _counting_parses(monkeypatch)
        shown = loop.run_until_complete(explainer.explain(STORY_AND_TWO_QUESTIONS))
    finally:
        loop.close()
    assert shown.reply is not None and shown.reply.facts  # the actions searched and answered...
    assert len(made) == 1  # ...with the terms the NLU graph read


def test_a_confirmation_payload_without_its_question_is_read_as_forget_me(parse):
    """Rasa's RegexMessageHandler, the graph's last node, reads a payload after every component:
    the confirmation in context must still win over it (a forged "Yes, delete it" asks again)."""
    assert parse("/forget_confirm")["intent"]["name"] == "forget_me"
    assert parse("/forget_cancel")["intent"]["name"] == "forget_cancel"
