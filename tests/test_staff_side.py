"""The staff side against the running assistant, on every channel (REST, web chat over
socket.io, Telegram and Twilio through their stand-ins): thumbs up / down on an answer, the
"What were you looking for?" follow-up, the privacy notice and the "privacy" command, "forget me"
(the conversation and its records really gone from the databases), crisis turns counted
without text - all read back from the real tracker store and records database."""
from __future__ import annotations

import sqlite3
import time
import uuid
from typing import Any, Dict, List

import pytest

from bot.channels.messaging import pseudonym
from bot.settings import Settings
from tests import clients
from tests.clients import (ID_KEY, WebChat, bodies, send_update, sent_texts, sms, text_update,
                           twilio_post, wait_for_reply)
from tests.conftest import wait_until

pytestmark = pytest.mark.servers

QUESTION = "how long does the IM shot last?"


class Conversation:
    """One patient on one channel: ``say`` a text (or press a button) and get the reply's texts;
    ``sender_id`` is the id the tracker store knows the conversation by."""

    def __init__(self, assistant, apis, channel: str) -> None:
        self.assistant, self.channel = assistant, channel
        self.telegram_api, self.twilio_api = apis
        self.turns = 0
        self.last: List[Dict[str, Any]] = []  # the last reply's messages (with their buttons)
        if channel == "rest":
            self.client_id = f"staff-{uuid.uuid4().hex[:12]}"  # REST conversations have a namespace of their own
            self.sender_id = assistant.conversation_id(self.client_id)
        elif channel == "telegram":
            self.chat_id = uuid.uuid4().int % 10**9
            self.sender_id = pseudonym(key=ID_KEY, channel="telegram", address=str(self.chat_id))
        elif channel == "twilio":
            self.phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
            self.sender_id = pseudonym(key=ID_KEY, channel="twilio", address=self.phone)
        else:
            # One event loop for the whole conversation (the socket.io client lives in it).
            import asyncio
            import threading

            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, daemon=True).start()
            self.chat = self._run(WebChat(assistant).connect())
            self.sender_id = self.chat.session["session_id"]

    def say(self, text: str, *, button: bool = False) -> List[str]:
        first = self.turns == 0
        self.turns += 1
        if self.channel == "rest":
            self.last = self.assistant.say(self.client_id, text, metadata={"button": True} if button else None)
            return [m.get("text", "") for m in self.last]
        if self.channel == "socketio":
            start = len(self.chat.received)
            texts = self._run(self.chat.ask(text, button=button))
            self.last = self.chat.received[start:]
            return texts
        if self.channel == "telegram":
            start = len(self.telegram_api.recorded(chat_id=self.chat_id, method="sendMessage"))
            update = self._callback(text) if button else text_update(text, self.chat_id)
            assert send_update(self.assistant, update)[0] == 200
            texts = wait_for_reply(lambda: sent_texts(self.telegram_api.recorded(chat_id=self.chat_id))[start:],
                                   first=first)
            self.last = self.telegram_api.recorded(chat_id=self.chat_id, method="sendMessage")[start:]
            return texts
        start = len(self.twilio_api.recorded(To=self.phone))
        assert twilio_post(self.assistant, sms(self._option(text) if button else text, self.phone))[0] == 200
        texts = wait_for_reply(lambda: bodies(self.twilio_api.recorded(To=self.phone))[start:], first=first)
        self.last = [{"text": t} for t in texts]
        return texts

    def _run(self, coroutine):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def _callback(self, payload: str) -> Dict[str, Any]:
        """Telegram: press the inline button with this payload, from the last reply's keyboard."""
        keyboards = [c["reply_markup"]["inline_keyboard"] for c in self.last if c.get("reply_markup")]
        data = [b["callback_data"] for k in keyboards for row in k for b in row]
        assert payload in data, (payload, data)
        return {"update_id": next(clients.update_ids), "callback_query": {
            "id": f"cbq-{uuid.uuid4().hex[:8]}", "chat_instance": "1", "data": payload,
            "from": {"id": self.chat_id, "is_bot": False, "first_name": "Pat"},
            "message": {"message_id": 5, "date": int(time.time()), "chat": {"id": self.chat_id, "type": "private"},
                        "text": "..."}}}

    def _option(self, payload: str) -> str:
        """SMS: the number of the option offered for this payload (e.g. "1")."""
        titles = {"/forget_confirm": "Yes, delete it", "/forget_cancel": "No, keep it", "/forget_me": "Delete my conversation"}
        for text in (m["text"] for m in self.last):
            for line in text.splitlines():
                number, _, title = line.partition(". ")
                if title.strip() == titles.get(payload):
                    return number
        raise AssertionError(f"no SMS option for {payload} in {self.last}")

    def starts_afresh(self) -> None:
        """The conversation was deleted: the next reply is the first of a new one."""
        self.turns = 0
        if self.channel == "socketio":
            self.chat.asked = 0

    def buttons(self) -> List[str]:
        """The payloads offered with the last reply (none on SMS: it has numbered options)."""
        found = []
        for message in self.last:
            found += [b.get("payload") for b in message.get("buttons") or message.get("quick_replies") or []]
            markup = message.get("reply_markup") or {}
            found += [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]
        return found

    def close(self) -> None:
        if self.channel == "socketio":
            self._run(self.chat.close())
            self.loop.call_soon_threadsafe(self.loop.stop)


CHANNELS = ["rest", "socketio", "telegram", "twilio"]


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
