"""What the running assistant exposes, probed as an attacker would (issue 20): the REST channel is
the clinic's own door - its conversations live in a namespace of their own, so knowing a web chat
session id or a phone conversation's id gives nothing over REST, and a request relayed for another
address is refused; a "forget me" confirmation deletes nothing unless it answers its own question.
(The balancer's side - REST refused on its public port, the version banner hidden, the REST token -
is in tests/test_cluster.py; sign-in and the dashboard in tests/test_dashboard.py.)"""
from __future__ import annotations

import json
import uuid

import pytest

from tests.clients import post
from tests.conftest import wait_until
from tests.test_staff_side import QUESTION, Conversation, events_of, joined, records_of

pytestmark = pytest.mark.servers


def rest(assistant, sender: str, text: str, *, button: bool = False, headers=None):
    body = {"sender": sender, "message": text, **({"metadata": {"button": True}} if button else {})}
    return post(assistant.rest_url, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


def stored_state(assistant, conversation):
    return events_of(assistant, conversation.sender_id), records_of(assistant, conversation.sender_id)


@pytest.mark.parametrize("channel", ["socketio", "telegram", "twilio"])
def test_rest_cannot_reach_another_channels_conversation(running_assistant, telegram_api, twilio_api, channel):
    """With a web chat session id (no token) or a phone conversation's id, a REST client can neither
    write into that conversation, learn its topic, plant a crisis turn, rate it, nor delete it."""
    victim = Conversation(running_assistant, (telegram_api, twilio_api), channel)
    try:
        victim.say(QUESTION)
        before = stored_state(running_assistant, victim)
        assert before[0] > 0 and before[1]
        target = victim.sender_id
        status, body = rest(running_assistant, target, "and the IV drip?")
        assert status == 200 and all(m.get("recipient_id") == target for m in json.loads(body))  # its own id back
        rest(running_assistant, target, "I want to end my life tonight")
        rest(running_assistant, target, "/feedback_down", button=True)
        rest(running_assistant, target, "forget me")
        status, _ = rest(running_assistant, target, "/forget_confirm", button=True)
        assert status == 200
        assert stored_state(running_assistant, victim) == before  # not one event or record more, nothing deleted
        # what the REST client sent is its own conversation, under its own namespace
        assert events_of(running_assistant, running_assistant.conversation_id(target)) == 0  # it was forgotten
        assert victim.say("and is the IV drip faster?")  # the patient's conversation goes on
        # A phone channel's reply goes out during the turn; the turn is saved just after it.
        wait_until(lambda: events_of(running_assistant, victim.sender_id) > before[0], timeout=30,
                   what="the patient's turn to be saved")
    finally:
        victim.close()


@pytest.mark.parametrize("header", [
    {"X-Forwarded-For": "203.0.113.9"},
    {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"},  # a forged loopback entry before the real one
    {"X-Real-IP": "198.51.100.23"},
    {"Forwarded": "for=198.51.100.23;proto=https"},
    {"Forwarded": "for=unknown"},
])
def test_rest_relayed_for_another_address_is_refused(running_assistant, header):
    """Behind a proxy that forwarded it, a REST request comes from someone else: refused before any
    work, nothing stored. (This assistant has no REST_TOKEN: REST answers its own machine only.)"""
    sender = f"relayed-{uuid.uuid4().hex[:8]}"
    status, body = rest(running_assistant, sender, QUESTION, headers=header)
    assert status == 403 and "own machine" in json.loads(body)["error"]
    assert events_of(running_assistant, running_assistant.conversation_id(sender)) == 0
    local = f"local-{uuid.uuid4().hex[:8]}"
    status, _ = rest(running_assistant, local, QUESTION, headers={"X-Forwarded-For": "127.0.0.1"})
    assert status == 200  # a proxy on this machine relaying for this machine


def test_a_lone_or_old_forget_me_confirmation_deletes_nothing(running_assistant):
    """The confirmation counts only right after its question: pressed alone (a forged button) or
    from an old question, it asks the question again; confirming that deletes."""
    sender = f"lone-{uuid.uuid4().hex[:8]}"
    conversation = running_assistant.conversation_id(sender)
    running_assistant.say(sender, QUESTION)
    before = events_of(running_assistant, conversation), records_of(running_assistant, conversation)
    asked = joined([m.get("text", "") for m in running_assistant.say(sender, "/forget_confirm",
                                                                       metadata={"button": True})])
    assert "can't be undone" in asked and "have been deleted" not in asked
    assert events_of(running_assistant, conversation) > before[0] and records_of(running_assistant, conversation) == before[1]
    kept = joined([m.get("text", "") for m in running_assistant.say(sender, "/forget_cancel", metadata={"button": True})])
    assert "nothing has been deleted" in kept
    running_assistant.say(sender, "how long does the drip last?")
    # the "Yes, delete it" button of the old question, pressed now
    again = joined([m.get("text", "") for m in running_assistant.say(sender, "/forget_confirm", metadata={"button": True})])
    assert "can't be undone" in again and events_of(running_assistant, conversation) > 0
    done = joined([m.get("text", "") for m in running_assistant.say(sender, "/forget_confirm", metadata={"button": True})])
    assert "have been deleted" in done
    assert events_of(running_assistant, conversation) == 0 and records_of(running_assistant, conversation) == []


@pytest.mark.parametrize("peer, headers, token, authorization, allowed", [
    ("127.0.0.1", {}, "", None, True),
    ("::1", {}, "", None, True),
    ("::ffff:127.0.0.1", {}, "", None, True),  # an IPv4 client of a dual-stack socket
    ("192.0.2.7", {}, "", None, False),  # REST bound to a public interface: still refused
    ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}, "", None, True),
    ("127.0.0.1", {"Forwarded": 'for="[::1]:4711";proto=https'}, "", None, True),
    ("127.0.0.1", {"Forwarded": "proto=https"}, "", None, True),  # names no address
    ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}, "", None, False),
    ("127.0.0.1", {"Forwarded": 'for=127.0.0.1, for="[2001:db8::1]"'}, "", None, False),
    ("127.0.0.1", {"X-Real-IP": "garbage"}, "", None, False),
    ("127.0.0.1", {}, "t" * 16 + "0123456789abcdef", None, False),  # a token is then always needed
    ("192.0.2.7", {"X-Forwarded-For": "203.0.113.9"}, "t" * 16 + "0123456789abcdef", "Bearer " + "t" * 16 + "0123456789abcdef", True),
    ("127.0.0.1", {}, "t" * 16 + "0123456789abcdef", "Bearer wrong", False),
])
def test_who_may_use_the_rest_channel(peer, headers, token, authorization, allowed):
    from sanic.compat import Header

    from bot.channels.rest import refusal

    refused = refusal(peer=peer, headers=Header(list(headers.items())), authorization=authorization, token=token)
    assert (refused is None) == allowed
    if refused is not None:
        assert refused.status == (401 if token else 403)
