"""The disclaimer walk: every response and every action path that can carry health
information, every fallback and the greeting end with "not medical advice"."""
from __future__ import annotations

import asyncio  # noqa: F401
from pathlib import Path

import pytest

from tests.clients import run_async
import yaml

from actions.conversation import ActionGreet
from actions.knowledge import ActionAnswerQuestion, ActionFallback
from actions.safety import ActionPersonalAdvice
from bot.answers.replies import DISCLAIMER_RESPONSE, DISCLAIMERS, RATED_DISCLAIMER_RESPONSE
from tests.conftest import make_tracker

# Plain responses that rules may send directly: conversational, no health information.
# Replies that carry no health information: small talk and the channel notices.
SMALL_TALK = {"utter_goodbye", "utter_thanks", "utter_iamabot", "utter_capabilities", "utter_message_too_long", "utter_non_text",
              "utter_slow_down",
              # the staff side: feedback, privacy and "forget me" (bot/staff/)
              "utter_feedback_thanks", "utter_feedback_ask", "utter_feedback_noted", "utter_feedback_nothing",
              "utter_privacy_notice", "utter_privacy", "utter_forget_ask", "utter_forgotten", "utter_forget_cancelled"}

ACTION_PATHS = [
    (ActionAnswerQuestion, dict(text="which is faster", intent="ask_onset")),
    (ActionAnswerQuestion, dict(text="how fast is IV", intent="ask_onset", routes=["iv"])),
    (ActionAnswerQuestion, dict(text="and IM?", intent="ask_followup", routes=["im"], slots={"topic": "peak"})),
    (ActionAnswerQuestion, dict(text="and the other?", intent="ask_followup", slots={"topic": "peak", "last_route": "iv"})),
    (ActionAnswerQuestion, dict(text="hmm needles?", intent="ask_unknown_topic")),
    (ActionFallback, dict(text="my veins are hard to find", intent="nlu_fallback")),
    (ActionFallback, dict(text="zzzz qqq", intent="nlu_fallback")),
    (ActionFallback, dict(text="what does it cost", intent="out_of_scope")),
    (ActionPersonalAdvice, dict(text="what dose should I take", intent="personal_advice")),
    (ActionPersonalAdvice, dict(text="I'm pregnant", intent="personal_advice")),
    (ActionGreet, dict(text="hello", intent="greet")),
]


@pytest.mark.parametrize("action_class, turn", ACTION_PATHS, ids=[f"{a.__name__}-{t['intent']}-{i}" for i, (a, t) in enumerate(ACTION_PATHS)])
def test_every_action_path_ends_with_the_disclaimer(assistant, dispatcher, domain_dict, render, action_class, turn):
    run_async(action_class(assistant).run(dispatcher, make_tracker(**turn), domain_dict))
    assert dispatcher.messages, "the action said nothing"
    assert dispatcher.messages[-1]["response"] in DISCLAIMERS
    assert "not medical advice" in render(dispatcher.messages)[-1]["text"]


@pytest.mark.parametrize("name", DISCLAIMERS)
def test_the_disclaimer_response_says_not_medical_advice(domain_dict, name):
    for variant in domain_dict["responses"][name]:
        assert "not medical advice" in variant["text"]


def test_answers_carry_the_rating_buttons_and_other_replies_do_not(assistant, dispatcher, domain_dict):
    """Thumbs up / down under knowledge answers and advice; not under a fallback or the greeting."""
    expected = {"ask_onset": RATED_DISCLAIMER_RESPONSE, "personal_advice": RATED_DISCLAIMER_RESPONSE,
                "nlu_fallback": DISCLAIMER_RESPONSE, "out_of_scope": DISCLAIMER_RESPONSE, "greet": DISCLAIMER_RESPONSE}
    for action_class, turn in ACTION_PATHS:
        if turn["intent"] not in expected or turn["text"] == "my veins are hard to find":  # found by search: rated
            continue
        dispatcher.messages.clear()
        run_async(action_class(assistant).run(dispatcher, make_tracker(**turn), domain_dict))
        assert dispatcher.messages[-1]["response"] == expected[turn["intent"]], turn
    payloads = {b["payload"] for b in domain_dict["responses"][RATED_DISCLAIMER_RESPONSE][0]["buttons"]}
    assert payloads == {"/feedback_up", "/feedback_down"}


def _blocks(project_root: Path):
    for path in sorted((project_root / "data").rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in (data.get("rules") or []) + (data.get("stories") or []):
            yield path.name, [step.get("action") for step in block.get("steps", []) if step.get("action")]


def _sent_by_rules(project_root: Path) -> set:
    return {a for _, actions in _blocks(project_root) for a in actions if a.startswith("utter_")}


def test_stories_and_rules_add_the_disclaimer_to_every_health_response(project_root):
    """A rule or story may send small talk directly; any other response it sends (the crisis
    replies) must be followed by the disclaimer in the same turn. Everything else goes through
    an action, which adds it in bot/answers/replies.py."""
    for filename, actions in _blocks(project_root):
        for position, action in enumerate(actions):
            if action.startswith("utter_") and action not in SMALL_TALK | {DISCLAIMER_RESPONSE}:
                assert DISCLAIMER_RESPONSE in actions[position + 1:position + 2], (
                    f"{filename}: {action} is not followed by {DISCLAIMER_RESPONSE}")


def test_every_response_is_small_talk_or_sent_with_the_disclaimer(domain_dict, project_root):
    """Walk every response in the domain: small talk, composed by the assistant (bot/answers and
    what runs it, which add the disclaimer), or sent by a rule that adds it (checked above)."""
    import re

    composed = set()
    for path in [p for layer in ("answers", "understanding", "rasa", "ops") for p in (project_root / "bot" / layer).rglob("*.py")]:
        composed |= set(re.findall(r'"(utter_[a-z_]+)"', path.read_text()))
    by_rules = _sent_by_rules(project_root)
    for name in domain_dict["responses"]:
        assert name in SMALL_TALK | composed | by_rules, f"{name} is neither small talk nor sent with the disclaimer"
    assert not SMALL_TALK & composed


@pytest.mark.parametrize("name", sorted(SMALL_TALK))
def test_small_talk_carries_no_health_information(domain_dict, name):
    text = domain_dict["responses"][name][0]["text"].lower()
    assert not any(ch.isdigit() for ch in text)
    for word in ("minutes", "%", "nausea", "blood pressure", "absorbed", "is safe", "effective"):
        assert word not in text
