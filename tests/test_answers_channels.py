"""Issue 19 on every channel (REST, web chat, Telegram, Twilio), against the running assistant:
the fact that answers leads, the overview, wrong premises corrected first, referrals without
reassurance, and declines without near facts."""
from __future__ import annotations

import re

import pytest

from tests.clients import channel_askers

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
