"""The staff side against the running assistant, on every channel (REST, web chat over
socket.io, Telegram and Twilio through their stand-ins): thumbs up / down on an answer, the
"What were you looking for?" follow-up, the privacy notice and the "privacy" command, "forget me"
(the conversation and its records really gone from the databases), crisis turns counted
without text - all read back from the real tracker store and records database."""
from __future__ import annotations

import sqlite3
import uuid
from typing import Any, Dict, List

import pytest

from bot.ops.settings import Settings
from tests.clients import CHANNELS, Conversation
from tests.conftest import wait_until

pytestmark = pytest.mark.servers

QUESTION = "how long does the IM shot last?"


@pytest.fixture
def conversation(running_assistant, telegram_api, twilio_api, request):
    talk = Conversation(running_assistant, (telegram_api, twilio_api), request.param)
    yield talk
    talk.close()


def staff_settings(assistant) -> Settings:
    return Settings(data_dir=assistant.data_dir)


def records_of(assistant, sender_id: str) -> List[Dict[str, Any]]:
    """The records of this conversation, read from the real records database."""
    from bot.staff.records import conversation_key

    key = conversation_key(sender_id, settings=staff_settings(assistant))
    with sqlite3.connect(assistant.data_dir / "records.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM turn_records WHERE conversation = ? ORDER BY at", (key,))]


def events_of(assistant, sender_id: str) -> int:
    with sqlite3.connect(assistant.data_dir / "conversations.db") as db:
        return db.execute("SELECT count(*) FROM events WHERE sender_id = ?", (sender_id,)).fetchone()[0]


def joined(texts: List[str]) -> str:
    return "\n".join(texts).replace("&#x27;", "'").replace("&quot;", '"')


@pytest.mark.parametrize("conversation", CHANNELS, indirect=True)
def test_privacy_notice_on_the_first_reply_only_and_the_privacy_command(conversation):
    first = conversation.say(QUESTION)
    assert first[-1].startswith("Privacy:") and "30 days" in first[-1], first
    assert any("Source:" in t for t in first[:-1])
    second = conversation.say("and is the IV drip faster?")
    assert not any(t.startswith("Privacy:") for t in second), second
    explained = joined(conversation.say("privacy"))
    assert "What is kept" in explained and "30 days" in explained and "forget me" in explained
    assert "counted, never stored as text" in explained


@pytest.mark.parametrize("conversation", CHANNELS, indirect=True)
def test_thumbs_up_and_down_are_recorded_with_the_question_only_on_a_thumbs_down(running_assistant, conversation):
    answer = conversation.say(QUESTION)
    if conversation.channel == "twilio":
        assert any("Reply 👍 or 👎" in t for t in answer), answer  # said once on SMS...
    else:
        assert {"/feedback_up", "/feedback_down"} <= set(conversation.buttons()), conversation.last
    assert "Thank you for the feedback" in joined(conversation.say("/feedback_up", button=True)
                                                   if conversation.channel != "twilio" else conversation.say("👍"))
    rated = records_of(running_assistant, conversation.sender_id)
    assert [(r["kind"], r["feedback"], r["question"]) for r in rated] == [("answer", 1, None)], rated
    assert rated[0]["topic"] == "duration" and rated[0]["route"] == "im" and rated[0]["facts"]

    second = conversation.say("My name is Tom Baker, is the drip painful? call me on 07700 900123")
    if conversation.channel == "twilio":
        assert not any("Reply 👍" in t for t in second), second  # ...and not again
    down = conversation.say("/feedback_down", button=True) if conversation.channel != "twilio" else conversation.say("👎")
    assert "What were you looking for?" in joined(down)
    before = len(records_of(running_assistant, conversation.sender_id))
    noted = conversation.say("the parking prices near the clinic, mail me at tom@example.com")
    assert "passed that on" in joined(noted)
    assert "can't answer" not in joined(noted).lower() and "not something I can" not in joined(noted)  # one reply
    assert len(records_of(running_assistant, conversation.sender_id)) == before  # recorded once, as the follow-up
    latest, = [r for r in records_of(running_assistant, conversation.sender_id) if r["feedback"] == -1]
    assert "painful" in latest["question"] and "Tom" not in latest["question"] and "07700" not in latest["question"]
    assert "[name]" in latest["question"] and "[phone]" in latest["question"]
    assert "parking" in latest["followup"] and "tom@example.com" not in latest["followup"] and "[email]" in latest["followup"]


@pytest.mark.parametrize("conversation", CHANNELS, indirect=True)
def test_a_crisis_turn_is_counted_never_stored_as_text(running_assistant, conversation):
    crisis = joined(conversation.say("I can't do this anymore, I want to end my life tonight"))
    assert "988" in crisis
    crisis_records = [r for r in records_of(running_assistant, conversation.sender_id) if r["kind"] == "crisis"]
    assert len(crisis_records) == 1
    assert crisis_records[0]["question"] is None and crisis_records[0]["followup"] is None
    assert crisis_records[0]["channel"] == conversation.channel


@pytest.mark.parametrize("conversation", CHANNELS, indirect=True)
def test_forget_me_asks_first_then_deletes_the_conversation_and_its_records(running_assistant, conversation):
    conversation.say(QUESTION)
    conversation.say("/feedback_up", button=True) if conversation.channel != "twilio" else conversation.say("👍")
    assert events_of(running_assistant, conversation.sender_id) > 0 and records_of(running_assistant, conversation.sender_id)

    asked = joined(conversation.say("please delete my conversation"))
    assert "can't be undone" in asked
    kept = joined(conversation.say("/forget_cancel", button=True))
    assert "nothing has been deleted" in kept and events_of(running_assistant, conversation.sender_id) > 0

    conversation.say("forget me")
    done = joined(conversation.say("/forget_confirm", button=True))
    assert "have been deleted" in done
    # the deletion takes the place of the turn's save, at the end of the turn; on the phone
    # channels the reply can arrive (through their API) a moment before that end
    wait_until(lambda: events_of(running_assistant, conversation.sender_id) == 0, timeout=10,
               what="the conversation's events to be deleted at the end of the turn")
    assert records_of(running_assistant, conversation.sender_id) == []
    from bot.staff.records import conversation_key

    key = conversation_key(conversation.sender_id, settings=staff_settings(running_assistant))
    wait_until(lambda: f"forget me: deleted conversation {key}" in running_assistant.service_log("rasa").read_text(),
               timeout=10, what="the audit line of the deletion")
    assert conversation.sender_id not in running_assistant.service_log("rasa").read_text()

    conversation.starts_afresh()
    again = conversation.say("hello")  # a new conversation: the privacy notice again
    assert any(t.startswith("Privacy:") for t in again)


def test_a_confirmation_button_typed_as_text_deletes_nothing(running_assistant):
    """Only a button press may send /forget_confirm: typed, it is plain text for NLU."""
    sender = f"typed-{uuid.uuid4().hex[:8]}"
    running_assistant.say(sender, QUESTION)
    running_assistant.say(sender, "/forget_confirm")
    assert events_of(running_assistant, running_assistant.conversation_id(sender)) > 0


def test_a_fallback_keeps_the_scrubbed_question_and_an_answer_does_not(running_assistant):
    sender = f"fallback-{uuid.uuid4().hex[:8]}"
    running_assistant.say(sender, QUESTION)
    running_assistant.say(sender, "zxqv blorf wibble snark, jane.doe@example.org")
    kinds = [(r["kind"], r["question"]) for r in records_of(running_assistant, running_assistant.conversation_id(sender))]
    assert kinds[0] == ("answer", None)
    assert kinds[1][0] == "fallback" and "[email]" in kinds[1][1] and "example.org" not in kinds[1][1]


def test_the_scheduled_purge_deletes_backdated_conversations_inside_the_service(running_assistant):
    """The running service purges every PURGE_INTERVAL_MINUTES (a few seconds in the tests):
    a conversation back-dated past RETENTION_DAYS and its records go; a current one stays."""
    from bot.staff.records import conversation_key

    old, current = f"old-{uuid.uuid4().hex[:8]}", f"current-{uuid.uuid4().hex[:8]}"
    for sender in (old, current):
        running_assistant.say(sender, QUESTION)
    old, current = running_assistant.conversation_id(old), running_assistant.conversation_id(current)
    forty_days = 40 * 86400
    with sqlite3.connect(running_assistant.data_dir / "conversations.db") as db:
        db.execute("UPDATE events SET timestamp = timestamp - ? WHERE sender_id = ?", (forty_days, old))
    key = conversation_key(old, settings=staff_settings(running_assistant))
    with sqlite3.connect(running_assistant.data_dir / "records.db") as db:
        db.execute("UPDATE turn_records SET at = datetime(at, '-40 days') WHERE conversation = ?", (key,))
    wait_until(lambda: f"purge: deleted conversation {key}" in running_assistant.service_log("rasa").read_text(),
               timeout=60, what="the scheduled purge's audit line")
    assert events_of(running_assistant, old) == 0 and records_of(running_assistant, old) == []
    assert events_of(running_assistant, current) > 0 and records_of(running_assistant, current)
