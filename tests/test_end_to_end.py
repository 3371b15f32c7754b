"""The whole assistant over HTTP: `python -m bot serve` starts the real action server and
Rasa server, and a patient talks to the REST channel."""
from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request

import pytest

from bot.ops.harness import start_assistant

pytestmark = pytest.mark.servers


def joined(messages) -> str:
    return "\n".join(m.get("text", "") for m in messages)


def test_a_patient_conversation(running_assistant):
    say = running_assistant.say
    greeting = say("patient-1", "hi")
    assert "not medical advice" in joined(greeting)
    assert any(m.get("buttons") for m in greeting)

    faster = joined(say("patient-1", "which is faster, IV or IM?"))
    assert "4 to 5 minutes" in faster and "1 to 2 minutes" in faster and "after a few minutes" in faster
    assert "Source:" in faster and "not medical advice" in faster

    follow = joined(say("patient-1", "how long does the drip last?"))
    assert "40 minutes to an hour" in follow
    other = joined(say("patient-1", "and IM?"))
    assert "30 to 45 minutes" in other and "about 45 minutes" in other and "40 minutes" not in other


def test_crisis_mid_conversation_comes_first(running_assistant):
    say = running_assistant.say
    say("patient-2", "what are the side effects?")
    crisis = joined(say("patient-2", "how long does the shot last? I took too much and can't breathe"))
    assert "911" in crisis and "988" in crisis
    assert "Source:" not in crisis and "45 minutes" not in crisis


def test_out_of_scope_and_personal_advice(running_assistant):
    say = running_assistant.say
    scope = say("patient-3", "how much does a session cost?")
    assert "can't" in joined(scope).lower() and "not medical advice" in joined(scope)
    assert 3 <= len(next(m for m in scope if m.get("buttons"))["buttons"]) <= 4
    advice = joined(say("patient-3", "can I take ketamine with my antidepressants?"))
    assert "clinician" in advice and "not medical advice" in advice


def test_every_health_reply_over_http_has_the_disclaimer(running_assistant):
    for i, text in enumerate(["is the injection safe?", "my veins are hard to find", "qwzx plorb", "how do I prepare?"]):
        assert "not medical advice" in joined(running_assistant.say(f"patient-4-{i}", text))


def test_overlong_and_empty_messages_get_a_clear_reply(running_assistant):
    say = running_assistant.say
    long = joined(say("patient-5", "I read both articles about the drip and the shot twice. " * 12 + "how long does it last?"))
    assert "too long" in long and "Source:" not in long
    # A crisis inside an overlong message is still handled first.
    crisis = joined(say("patient-5", "sorry for the long message " * 40 + "I want to end my life"))
    assert "911" in crisis and "988" in crisis and "too long" not in crisis
    assert "only read text" in joined(say("patient-5", "   "))


def test_the_demo_page_address_is_printed(running_assistant):
    log = running_assistant.log.read_text()
    assert f"Demo clinic page with the chat widget: {running_assistant.web_url}" in log
    with urllib.request.urlopen(running_assistant.web_url, timeout=10) as response:
        assert "ClinicChat.init" in response.read().decode()


def test_action_server_errors_do_not_leak_the_tracker(running_assistant):
    """rasa-sdk would answer a 500 with the whole tracker; ours answers a bare error."""
    secret = "MY SECRET SYMPTOMS 555-0100"
    body = json.dumps({"next_action": "action_answer_question", "tracker": {"latest_message": secret}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{running_assistant.action_port}/webhook", data=body,
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 500
    answer = error.value.read().decode()
    assert secret not in answer and "tracker" not in answer
    assert secret not in running_assistant.log.read_text(errors="replace")


def test_a_long_conversation_keeps_being_answered(running_assistant):
    """Rasa sends the whole conversation to the action server with every turn: a conversation
    larger than the patient-facing request limit must still be answered."""
    import sqlite3
    import time

    limit = 64 * 1024  # REQUEST_MAX_BYTES, the limit on what patients send
    questions = ["how long does the drip last?", "and IM?", "which is faster, IV or IM?", "is the shot painful?",
                 "what side effects can happen?", "can I drive home afterwards?"]
    database = running_assistant.data_dir / "conversations.db"

    def stored_bytes() -> int:
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM events WHERE sender_id = ?",
                                      (running_assistant.conversation_id("long-talker"),)).fetchone()[0]

    turns = 0
    while stored_bytes() < 2 * limit:
        assert turns < 80, "the conversation did not grow"
        try:
            reply = running_assistant.say("long-talker", questions[turns % len(questions)])
        except urllib.error.HTTPError as error:
            assert error.code == 429  # one patient asking this fast is paced by the rate limit
            time.sleep(1.0)
            continue
        turns += 1
        assert "not medical advice" in joined(reply) and "went wrong" not in joined(reply), turns


def _listening_addresses(port: int) -> set:
    """Local IPv4/IPv6 addresses with a socket listening on ``port`` (from /proc/net)."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                addresses.add(address)
    return addresses


def test_servers_listen_on_loopback_only(running_assistant):
    loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1 as /proc/net writes them
    for port in (running_assistant.rasa_port, running_assistant.action_port):
        addresses = _listening_addresses(port)
        assert addresses, f"nothing listens on {port}"
        assert addresses <= loopback, f"port {port} also listens on {addresses - loopback}"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_stops_both_servers_cleanly(trained_model, tmp_path):
    running = start_assistant(tmp_path / "serve.log")
    try:
        assert running.say("patient-5", "which is safer?")
        running.process.send_signal(signal.SIGINT)
        assert running.process.wait(timeout=60) == 0
    finally:
        if running.process.poll() is None:
            running.process.kill()
    assert not _port_open(running.rasa_port) and not _port_open(running.action_port)
    assert "Assistant stopped." in running.log.read_text()


def _post(assistant, body) -> list:
    request = urllib.request.Request(assistant.rest_url, data=json.dumps(body).encode(), headers=assistant.rest_headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _stored_user_messages(assistant, sender: str) -> list:
    import sqlite3

    with sqlite3.connect(assistant.data_dir / "conversations.db") as db:
        rows = db.execute("SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'",
                          (assistant.conversation_id(sender),)).fetchall()
    return [json.loads(row[0]).get("message_id") for row in rows]


@pytest.mark.parametrize("marked", [True, False], ids=["resend", "balancer-retry"])
def test_a_resent_message_gets_its_reply_again_without_a_second_turn(running_assistant, marked):
    """The client's resend says so; the cluster balancer's retry of a request whose instance died
    is the same request again, unmarked: both get the stored reply."""
    sender, message_id = f"resend-same-text-{marked}", f"resend-same-{int(marked)}-0001"
    body = {"sender": sender, "message": "how long does the drip last?", "message_id": message_id}
    first = _post(running_assistant, body)
    again = _post(running_assistant, {**body, "metadata": {"resend": True}} if marked else body)
    # The same reply; the privacy notice that followed the first reply is not repeated.
    assert "40 minutes to an hour" in joined(first)
    assert again == [m for m in first if not m.get("text", "").startswith("Privacy:")]
    assert _stored_user_messages(running_assistant, sender).count(message_id) == 1


def test_a_reused_message_id_with_other_text_is_read_like_any_message(running_assistant):
    """A client that reuses an id must never get an old answer to a new message: here a crisis."""
    sender = "resend-other-text"
    _post(running_assistant, {"sender": sender, "message": "how long does the drip last?", "message_id": "reused-0001"})
    crisis = _post(running_assistant, {"sender": sender, "message": "I swallowed all of my sleeping pills an hour ago",
                                       "message_id": "reused-0001", "metadata": {"resend": True}})
    assert "This could be a medical emergency" in joined(crisis) and "40 minutes" not in joined(crisis)
