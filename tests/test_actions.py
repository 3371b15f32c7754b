"""Every custom action, run with the real domain, a CollectingDispatcher and trackers."""
from __future__ import annotations

import asyncio  # noqa: F401
import re
from typing import List

import pytest

from tests.clients import run_async

from actions.conversation import ActionGreet
from actions.knowledge import ActionAnswerQuestion, ActionFallback
from actions.safety import ActionPersonalAdvice
from bot.answers.assistant import OVERVIEW_TOPIC, Context, Question
from tests.conftest import make_tracker

TOPICS = [
    "routes", "procedure", "absorption", "onset", "peak", "duration", "experience", "control",
    "safety", "side_effects", "needles", "first_time", "pain", "depression", "conditions",
    "preparation", "dosing", "choosing", "effectiveness",
]


def run(action, dispatcher, tracker, domain_dict):
    return run_async(action.run(dispatcher, tracker, domain_dict))


def texts(render, dispatcher) -> List[str]:
    return [m["text"] for m in render(dispatcher.messages)]


def sentences(text: str) -> int:
    body = text.split("\nSource:")[0]
    body = re.sub(r"\*\*[^*]+:\*\*", "", body)
    return len(re.findall(r"[.!?](\s|$)", body))


@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("route", ["iv", "im"])
def test_answer_for_one_route(assistant, dispatcher, domain_dict, render, topic, route):
    tracker = make_tracker(text="question", intent=f"ask_{topic}", routes=[route])
    events = run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    answer, disclaimer = texts(render, dispatcher)
    assert "Source: " in answer
    assert 1 <= sentences(answer) <= 5
    assert "not medical advice" in disclaimer
    assert {"event": "slot", "name": "topic", "value": topic, "timestamp": None} in events
    assert {"event": "slot", "name": "last_route", "value": route, "timestamp": None} in events
    # Facts about the other route only never answer a single-route question.
    other = "im" if route == "iv" else "iv"
    used = assistant.answer(topic=topic, route=route).facts
    assert all(route in f.routes for f in used) and not any(f.routes == (other,) for f in used)


def test_no_composed_reply_makes_a_point_twice(assistant):
    """Every reply the knowledge base can compose - each topic about IV, about IM, compared, with
    and without the direct answer, and each two-topic answer - says each point once."""
    from tests.test_knowledge_base import NEAR_PARAPHRASE, _jaccard

    replies = [assistant.answer(topic=t, route=r) for t in TOPICS for r in ("iv", "im")]
    replies += [assistant.compare(topic=t, lead=lead) for t in TOPICS for lead in (False, True)]
    replies += [assistant.respond(question=Question("x", f"ask_{a}", 0.95),
                                  parts=[Question("a?", f"ask_{a}", 0.95), Question("b?", f"ask_{b}", 0.95)])
                for a in TOPICS for b in TOPICS if a != b]
    for reply in replies:
        for index, fact in enumerate(reply.facts):
            for other in reply.facts[index + 1:]:
                assert not fact.same_point(other), (reply.topic, fact.id, other.id)
                if not (fact.conflict and fact.conflict == other.conflict):
                    assert _jaccard(fact.text, other.text) < NEAR_PARAPHRASE, (fact.id, other.id)
    # the pairs a reviewer found said twice
    pairs = {frozenset(f.id for f in r.facts) for r in replies}
    assert not any({"procedure-im-needle", "procedure-im-deltoid"} <= p for p in pairs)
    assert not any({"absorption-iv", "absorption-iv-innerbloom"} <= p for p in pairs)


@pytest.mark.parametrize("topic", [t for t in TOPICS if t != OVERVIEW_TOPIC])  # routes: the overview, below
def test_comparison_shows_both_routes(assistant, dispatcher, domain_dict, render, topic):
    tracker = make_tracker(text="which is better?", intent=f"ask_{topic}")
    events = run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    answer = texts(render, dispatcher)[0]
    reply = assistant.answer(topic=topic, route=None)
    assert {r for f in reply.facts for r in f.routes} == {"iv", "im"}
    assert "Source: " in answer and 2 <= sentences(answer) <= 6
    if reply.messages[0].response != "utter_kb_answer":
        assert "**IV infusion:**" in answer and "**IM injection:**" in answer
    assert {"event": "slot", "name": "last_route", "value": None, "timestamp": None} in events


def test_naming_both_routes_is_a_comparison(assistant, dispatcher, domain_dict, render):
    tracker = make_tracker(text="is IV or IM faster", intent="ask_onset", routes=["iv", "im"])
    run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    answer = texts(render, dispatcher)[0]
    assert "4 to 5 minutes" in answer and "1 to 2 minutes" in answer


def test_disagreement_gives_both_figures_with_attribution(assistant, dispatcher, domain_dict, render):
    tracker = make_tracker(text="how fast does IM work", intent="ask_onset", routes=["im"])
    run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    answer = texts(render, dispatcher)[0]
    assert "Innerbloom says" in answer and "1 to 2 minutes" in answer
    assert "Klearwell says" in answer and "after a few minutes" in answer
    assert "differently" in answer  # the note that the articles disagree
    assert "Klearwell" in answer.split("Source:")[1] and "Innerbloom" in answer.split("Source:")[1]


def test_choosing_never_gives_a_verdict(assistant, dispatcher, domain_dict, render):
    run(ActionAnswerQuestion(assistant), dispatcher, make_tracker(intent="ask_choosing"), domain_dict)
    answer = texts(render, dispatcher)[0]
    assert "your care team will help you decide" in answer
    assert "**IV infusion:**" in answer and "**IM injection:**" in answer
    assert not re.search(r"\byou should (choose|pick|get)\b", answer, re.I)


def test_follow_up_uses_the_previous_topic(assistant, dispatcher, domain_dict, render):
    tracker = make_tracker(text="and IM?", intent="ask_followup", routes=["im"],
                           slots={"topic": "onset", "last_route": "iv"})
    events = run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    answer = texts(render, dispatcher)[0]
    assert "1 to 2 minutes" in answer and "4 to 5 minutes" not in answer
    assert {"event": "slot", "name": "last_route", "value": "im", "timestamp": None} in events


def test_follow_up_about_the_other_one(assistant, dispatcher, domain_dict, render):
    tracker = make_tracker(text="what about the other one?", intent="ask_followup",
                           slots={"topic": "duration", "last_route": "im"})
    run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    assert "40 minutes to an hour" in texts(render, dispatcher)[0]


def test_follow_up_without_context_explains_the_route(assistant, dispatcher, domain_dict, render):
    tracker = make_tracker(text="and IV?", intent="ask_followup", routes=["iv"])
    run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    assert "cannula" in texts(render, dispatcher)[0]


def test_low_confidence_search_answers_when_confident(assistant, dispatcher, domain_dict, render):
    tracker = make_tracker(text="my veins are hard to find", intent="nlu_fallback", confidence=0.3)
    events = run(ActionFallback(assistant), dispatcher, tracker, domain_dict)
    answer = texts(render, dispatcher)[0]
    assert "veins are hard to reach" in answer
    assert any(e.get("name") == "topic" and e.get("value") == "needles" for e in events)


@pytest.mark.parametrize("text", ["asdkjh qwe", "how much does a session cost", "is the weather nice"])
def test_low_confidence_without_a_match_falls_back(assistant, dispatcher, domain_dict, render, text):
    run(ActionFallback(assistant), dispatcher, make_tracker(text=text, intent="nlu_fallback"), domain_dict)
    messages = render(dispatcher.messages)
    assert dispatcher.messages[0]["response"] == "utter_fallback"
    assert "can't answer" in messages[0]["text"]
    assert 3 <= len(messages[0]["buttons"]) <= 4
    assert "not medical advice" in messages[-1]["text"]


def test_out_of_scope_says_so_and_offers_topics(assistant, dispatcher, domain_dict, render):
    run(ActionFallback(assistant), dispatcher, make_tracker(text="do you take insurance", intent="out_of_scope"), domain_dict)
    messages = render(dispatcher.messages)
    assert dispatcher.messages[0]["response"] == "utter_out_of_scope"
    assert "insurance" in messages[0]["text"] and "team at" in messages[0]["text"]
    assert all(b["payload"].startswith("/ask_") for b in messages[0]["buttons"])


REASSURANCE = re.compile(r"\b(safe|safer|safety|suitable|suits?|effective|works?|helps?|recommended|risks?|"
                         r"tolerated|regarded|record)\b", re.I)


@pytest.mark.parametrize("text", [
    "should I increase my dose",
    "what dose should I have",
    "I have high blood pressure, can I have it",
    "I'm pregnant, can I have ketamine",
    "I'm on lithium, is ketamine safe for me?",
    "I had an opioid addiction years ago, is it ok for me to have it?",
    "I've had psychosis in the past, would the IV suit me?",
    "my 16 year old is on an antidepressant, is it safe for him?",
    "I have a heart stent, is IM ok for me?",
])
def test_a_personal_advice_referral_stands_alone(assistant, dispatcher, domain_dict, render, text):
    """No sentence about safety, suitability or effectiveness follows "I can't give advice about your
    own treatment": it would read as the answer to the personal question."""
    run(ActionPersonalAdvice(assistant), dispatcher, make_tracker(text=text, intent="personal_advice"), domain_dict)
    messages = render(dispatcher.messages)
    responses = [m["response"] for m in dispatcher.messages]
    assert "utter_personal_advice" in responses and "clinician" in messages[responses.index("utter_personal_advice")]["text"]
    assert responses[-1] == "utter_disclaimer_rate"  # advice can be rated
    for message in messages[:-1]:
        if message is not messages[responses.index("utter_personal_advice")]:
            assert not REASSURANCE.search(message["text"]), message["text"]


def test_a_general_question_beside_a_personal_one_is_answered_first_as_general_information(
        assistant, dispatcher, domain_dict, render):
    text = "I'm on sertraline. Separately, in general how long does an IV infusion session take?"
    run(ActionPersonalAdvice(assistant), dispatcher, make_tracker(text=text, intent="personal_advice"), domain_dict)
    messages = render(dispatcher.messages)
    responses = [m["response"] for m in dispatcher.messages]
    assert responses == ["utter_kb_general", "utter_personal_advice", "utter_disclaimer_rate"], responses
    assert messages[0]["text"].startswith("In general terms:") and "Source:" in messages[0]["text"]
    assert "minute" in messages[0]["text"] and not REASSURANCE.search(messages[0]["text"])


def test_greeting_offers_topics_and_the_disclaimer(assistant, dispatcher, domain_dict, render):
    run(ActionGreet(assistant), dispatcher, make_tracker(text="hi", intent="greet"), domain_dict)
    greeting, disclaimer = render(dispatcher.messages)
    assert 3 <= len(greeting["buttons"]) <= 4
    assert "not medical advice" in disclaimer["text"]


def test_every_figure_in_a_reply_comes_from_the_knowledge_base(assistant, kb, render):
    """Answers invent no numbers: each number in a rendered answer is in a fact it used."""
    for topic in TOPICS:
        for route in ("iv", "im", None):
            reply = assistant.answer(topic=topic, route=route)
            from bot.answers.replies import outgoing

            rendered = render([{"response": m.response, **m.values} for m in outgoing(reply)])
            body = " ".join(r["text"].split("Source:")[0] for r in rendered)
            facts_text = " ".join(f.text for f in reply.facts)
            for number in re.findall(r"\d+", body):
                assert number in facts_text, f"{number} in the {topic}/{route} answer is not from its facts"


def test_response_templates_contain_no_figures(domain_dict):
    """Numbers reach patients only from the knowledge base or the clinic settings."""
    for name, variants in domain_dict["responses"].items():
        for variant in variants:
            assert not re.search(r"\d", re.sub(r"\{[a-z_]+\}", "", variant.get("text", ""))), name


def test_a_broken_knowledge_base_still_answers_with_the_fallback(kb, nlp, dispatcher, domain_dict, render, tmp_path):
    """An action error must not become silence or a stack trace for the patient."""
    from bot.answers.assistant import Assistant
    from bot.knowledge import get_knowledge_base
    from bot.ops.settings import get_settings

    missing = get_knowledge_base(database_url=f"sqlite:///{tmp_path / 'missing.db'}")
    broken = Assistant(knowledge_base=missing, settings=get_settings(), nlp_loader=lambda: nlp)
    run(ActionAnswerQuestion(broken), dispatcher, make_tracker(text="which is faster", intent="ask_onset"), domain_dict)
    assert [m["response"] for m in dispatcher.messages] == ["utter_fallback", "utter_disclaimer"]


def test_the_difference_between_iv_and_im_gets_the_overview(assistant, dispatcher, domain_dict, render):
    """Onset, intensity, control, duration and absorption side by side, both articles named."""
    tracker = make_tracker(text="what is the difference between IV and IM?", intent="ask_routes", routes=["iv", "im"])
    run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    assert dispatcher.messages[0]["response"] == "utter_kb_overview"
    text = render(dispatcher.messages)[0]["text"]
    for aspect in ("How soon it starts", "How strong it feels", "Control during the session", "How long it lasts",
                   "How much is absorbed"):
        assert aspect in text
    assert "100%" in text and "93%" in text and "Klearwell" in text and "Innerbloom" in text
    assert "{" not in text  # every slot filled


@pytest.mark.parametrize("text", ["explain IV vs IM", "tell me about both", "IV or IM?"])
def test_the_difference_in_other_words_gets_the_overview_too(assistant, text):
    ask, = assistant.asks(question=Question(text, "ask_routes", 0.95, ("iv", "im")), parts=(), context=Context())
    assert assistant.answer_ask(ask).messages[0].response == "utter_kb_overview"


@pytest.mark.parametrize("text, routes, leading", [
    ("is there a ketamine cream or a lozenge?", [], "routes-overview"),
    ("do most ketamine clinics use the drip?", ["iv"], "routes-iv-common"),
])
def test_another_question_about_the_ways_in_gets_its_fact_not_the_overview(assistant, dispatcher, domain_dict, text,
                                                                          routes, leading):
    tracker = make_tracker(text=text, intent="ask_routes", routes=routes)
    run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    assert "utter_kb_overview" not in [m["response"] for m in dispatcher.messages]
    question = Question(text, "ask_routes", 0.95, tuple(routes))
    reply = assistant.answer_ask(assistant.asks(question=question, parts=(), context=Context())[0])
    assert reply.facts[0].id == leading, [f.id for f in reply.facts]


def test_unsure_between_two_topics_offers_the_runner_up_as_one_button(assistant, dispatcher, domain_dict, render):
    from bot.answers.assistant import RUNNER_UP_MARGIN

    tracker = make_tracker(text="how long does the actual jab take?", intent="ask_duration", confidence=0.40)
    tracker.latest_message["intent_ranking"] = [{"name": "ask_duration", "confidence": 0.40},
                                                {"name": "ask_procedure", "confidence": 0.40 - RUNNER_UP_MARGIN / 2}]
    run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    responses = [m["response"] for m in dispatcher.messages]
    assert responses[-2] == "utter_runner_up", responses
    offer = render(dispatcher.messages)[-2]  # (Rasa's server adds the action's buttons to the rendered text)
    assert offer["text"] == "Or did you mean: how each one is given?"
    assert [b["payload"] for b in dispatcher.messages[-2]["buttons"]] == ["/ask_procedure"]


def test_a_clear_winner_gets_no_runner_up(assistant, dispatcher, domain_dict):
    tracker = make_tracker(text="how long does the IV last?", intent="ask_duration", confidence=0.9, routes=["iv"])
    tracker.latest_message["intent_ranking"] = [{"name": "ask_duration", "confidence": 0.9},
                                                {"name": "ask_procedure", "confidence": 0.05}]
    run(ActionAnswerQuestion(assistant), dispatcher, tracker, domain_dict)
    assert "utter_runner_up" not in [m["response"] for m in dispatcher.messages]


def test_every_topic_is_a_button_payload_a_press_may_send():
    from bot.channels.guard import button_payloads

    assert {"/ask_procedure", "/ask_onset", "/feedback_up"} <= button_payloads()
    assert "/ask_followup" not in button_payloads() and "/restart" not in button_payloads()
