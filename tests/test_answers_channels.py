"""Issue 19 on every channel (REST, web chat, Telegram, Twilio), against the running assistant:
the fact that answers leads, the overview, wrong premises corrected first, referrals without
reassurance, and declines without near facts."""
from __future__ import annotations

import re

import pytest

from tests.clients import CHANNELS as CHANNELS_WITH_BUTTONS, Conversation, channel_askers

pytestmark = pytest.mark.servers

Ask = channel_askers("answers")
CHANNELS = list(Ask)
REASSURANCE = re.compile(r"\b(safe|safer|safety|suitable|effective|works?|helps?|recommended|tolerated|record)\b",
                         re.I)
NUMBER = re.compile(r"\d")


@pytest.fixture
def apis(telegram_api, twilio_api):
    return telegram_api, twilio_api


def text_of(reply):
    return "\n".join(reply).replace("&#x27;", "'").replace("&amp;", "&")


def answer_part(reply):
    """The reply without the disclaimer, the rating line and the privacy notice."""
    return text_of([t for t in reply if "not medical advice" not in t and "Privacy:" not in t
                    and "Helpful?" not in t])


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_fact_that_answers_leads(running_assistant, apis, channel):
    reply, = Ask[channel](running_assistant, apis, ["how long does the actual IM jab take to give?"])
    first = answer_part(reply).strip().splitlines()[0]
    assert "seconds" in first, reply


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_difference_between_iv_and_im_is_the_overview(running_assistant, apis, channel):
    reply, = Ask[channel](running_assistant, apis, ["What is the difference between IV and IM?"])
    text = text_of(reply)
    for aspect in ("How soon it starts", "How strong it feels", "How long it lasts", "How much is absorbed"):
        assert aspect in text, (channel, reply)
    assert "100%" in text and "93%" in text and "not medical advice" in text.lower()


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_wrong_premise_is_corrected_first(running_assistant, apis, channel):
    reply, = Ask[channel](running_assistant, apis, ["the drip takes three hours, yes?"])
    assert answer_part(reply).strip().startswith("Not quite"), reply
    assert "40 minutes to an hour" in text_of(reply)


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_referral_is_never_followed_by_reassurance(running_assistant, apis, channel):
    reply, = Ask[channel](running_assistant, apis, ["I'm on lithium and I had psychosis years ago, is ketamine safe for me?"])
    text = answer_part(reply)
    assert "can't give advice about your own treatment" in text, reply
    after = text.split("can't give advice about your own treatment", 1)[1]
    assert not REASSURANCE.search(after.split("Please ask the care team", 1)[1] if "Please ask the care team" in after
                                  else after), reply


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_question_the_articles_do_not_cover_is_declined_without_a_near_fact(running_assistant, apis, channel):
    reply, = Ask[channel](running_assistant, apis, ["would ketamine from the clinic show up on a workplace drug test?"])
    text = answer_part(reply)
    assert "Source:" not in text and ("not something I can answer" in text or "can't answer" in text), reply
    assert not NUMBER.search(text.split("Here is")[0].replace("988", "").replace("911", "")), reply


# ---- unsure between two topics: the runner-up as one button -----------------------------------------

# Questions that sit between two topics. The model decides which of them leave its first two
# topics close enough for the runner-up button (bot/answers/assistant.py RUNNER_UP_MARGIN); at least one
# must, or the test says so.
BETWEEN_TWO_TOPICS = [
    "is the shot or the drip easier on the body",
    "is the jab or the drip easier on you physically",
    "is the drip or the injection easier to go through",
    "does the infusion feel better",
    "which is easier on the body, shot or drip",
    "is the drip kinder to you",
]
OFFER = re.compile(r"Or did you mean: (.+)\?")


@pytest.fixture(scope="module")
def unsure_question(running_assistant):
    """(question, payload, title) of the first question above whose REST reply offers a runner-up."""
    for number, text in enumerate(BETWEEN_TWO_TOPICS):
        for message in running_assistant.say(f"runner-up-probe-{number}", text):
            if OFFER.search(message.get("text", "")) and message.get("buttons"):
                button, = message["buttons"]
                return text, button["payload"], button["title"]
    pytest.fail("none of BETWEEN_TWO_TOPICS leaves the model unsure between two topics any more: add a closer one")


@pytest.mark.parametrize("channel", CHANNELS_WITH_BUTTONS)
def test_unsure_between_two_topics_the_runner_up_is_one_button_that_answers_it(running_assistant, apis, kb, channel,
                                                                               unsure_question):
    text, payload, title = unsure_question
    patient = Conversation(running_assistant, apis, channel)
    try:
        first = text_of(patient.say(text))
        offer = OFFER.search(first)
        assert offer and offer.group(1).lower() == title.lower(), (channel, first)
        assert first.index("Source:") < first.index("Or did you mean"), first  # the best answer comes first
        if channel != "twilio":  # SMS offers numbered options instead of buttons
            assert payload in patient.buttons(), (channel, patient.last)
        pressed = text_of(patient.say(payload, button=True, title=title))
    finally:
        patient.close()
    topic = payload.lstrip("/")[len("ask_"):]
    facts = [f.text for f in kb.facts(topic=topic)]
    assert any(fact in pressed for fact in facts), (channel, topic, pressed)
    assert "Or did you mean" not in pressed and "not medical advice" in pressed.lower(), pressed
