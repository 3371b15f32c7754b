"""Faults, bad input, abuse and privacy against the running assistant (real processes, real
sockets): limits before work, server-owned web chat sessions, rate limits, restarts that keep
conversations, and logs that never hold what a patient typed."""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import stat
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.clients import (
    run_async,
    WebChat,
    post,
    rest_ask,
    send_update,
    sms,
    telegram_ask,
    telegram_url,
    twilio_ask,
    twilio_post,
    twilio_url,
    webchat_ask,
)
from tests.conftest import wait_until

pytestmark = pytest.mark.servers


def rest_from(assistant, body: bytes, *, source: str = "127.0.0.1", timeout: float = 60):
    """POST to the REST webhook from a given loopback address; (status, body, seconds)."""
    connection = http.client.HTTPConnection("127.0.0.1", assistant.rasa_port, timeout=timeout,
                                            source_address=(source, 0))
    started = time.monotonic()
    try:
        connection.request("POST", "/webhooks/rest/webhook", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace"), time.monotonic() - started
    except (BrokenPipeError, ConnectionResetError):
        return None, "", time.monotonic() - started  # the server closed the connection on us
    finally:
        connection.close()


def ask_json(sender: str, text) -> bytes:
    return json.dumps({"sender": sender, "message": text}).encode()


# ---- limits before work -------------------------------------------------------------------------------

def test_a_20mb_message_never_slows_other_patients(running_assistant):
    huge = ask_json("huge-sender", "x" * 20_000_000)
    results = {}

    def send_huge():
        results["huge"] = rest_from(running_assistant, huge, source="127.0.0.21")

    sender = threading.Thread(target=send_huge)
    sender.start()
    status, body, seconds = rest_from(running_assistant, ask_json("patient-beside-huge", "which is faster, IV or IM?"),
                                      source="127.0.0.22")
    sender.join(timeout=60)
    assert status == 200 and "Source:" in body and seconds < 2
    assert results["huge"][0] in (413, None) and results["huge"][2] < 10
    assert "x" * 100 not in results["huge"][1]


def test_an_unsigned_20mb_twilio_form_is_refused_at_once(running_assistant):
    form = urllib.parse.urlencode({"From": "+15550009999", "Body": "y" * 20_000_000}).encode()
    started = time.monotonic()
    try:
        status, _ = post(twilio_url(running_assistant), form, {"Content-Type": "application/x-www-form-urlencoded"})
    except (BrokenPipeError, ConnectionResetError, OSError):
        status = None
    assert status in (403, 413, None) and time.monotonic() - started < 5


def test_a_1mb_web_chat_message_is_refused_and_others_are_served(running_assistant):
    async def run():
        big = await WebChat(running_assistant).connect()
        other = await WebChat(running_assistant).connect()
        await big.client.emit("user_uttered", {"message": "z" * 1_000_000})
        started = time.monotonic()
        reply = await other.ask("how long does the drip last?")
        elapsed = time.monotonic() - started
        await other.close()
        try:
            await big.close()
        except Exception:  # noqa: BLE001 - the server may already have dropped it
            pass
        return reply, elapsed, big.received

    reply, elapsed, big_received = run_async(run())
    assert any("Source:" in t for t in reply) and elapsed < 2
    assert big_received == []  # the oversized message was never processed


@pytest.mark.parametrize("sender", [None, "", "x" * 10_000, "has spaces", "semi;colon", 42, ["a"]])
def test_rest_sender_ids_are_validated(running_assistant, sender):
    status, body, _ = rest_from(running_assistant, json.dumps({"sender": sender, "message": "hi"}).encode())
    assert status == 400 and "sender" in json.loads(body)["error"]
    assert "x" * 100 not in body


@pytest.mark.parametrize("body", [
    b"[1, 2, 3]", b'"just a string"', b"null", b"{not json", b"",
    b'{"sender": "malformed-1", "message": 12}', b'{"sender": "malformed-2", "message": ["a"]}',
    b'{"sender": "malformed-3", "message": {"text": "hi"}}', b'{"sender": "malformed-4", "message": "hi", "metadata": 5}',
])
def test_malformed_rest_bodies_get_a_short_400(running_assistant, body):
    status, reply, _ = rest_from(running_assistant, body)
    assert status == 400 and set(json.loads(reply)) == {"error"} and "Traceback" not in reply


def test_malformed_phone_and_web_chat_input_never_gets_a_5xx(running_assistant):
    secret = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "telegram-webhook-secret-0123456789"}
    for body in (b"[]", b"null", b'{"update_id": "x", "message": {}}', b'{"update_id": 7, "message": {"chat": []}}',
                 b'{"update_id": 8, "callback_query": {"message": 1}}'):
        status, reply = post(telegram_url(running_assistant), body, secret)
        assert status == 200 and "Traceback" not in reply  # acknowledged, so Telegram does not retry for ever
    assert twilio_post(running_assistant, {"Body": "hi"})[0] == 400  # signed, but no From/To
    assert twilio_post(running_assistant, sms("hi", "+15550007777"), sign_with=None)[0] == 403

    async def web_chat():
        chat = await WebChat(running_assistant).connect()
        replies = [await chat.ask(value) for value in (12, ["a"], {"b": 1}, None, "")]
        await chat.close()
        return replies

    for reply in run_async(web_chat()):
        assert any("only read text" in t for t in reply)


def test_typed_slash_commands_are_text_not_intents(running_assistant):
    say = running_assistant.say
    assert "40 minutes to an hour" in str(say("slash-1", "how long does the drip last?"))
    say("slash-1", "/restart")  # text: the conversation is not reset...
    assert "30 to 45 minutes" in str(say("slash-1", "and IM?"))  # ...so the follow-up keeps its topic
    assert "911" not in str(say("slash-2", "/crisis_self"))  # no intent shortcut from typed text
    injected = str(say("slash-3", '/ask_onset{"route": "im"}'))
    assert "IV infusion" in injected or "can't answer" in injected  # no route entity injected


# ---- web chat sessions belong to the server ------------------------------------------------------------

def test_web_chat_from_a_foreign_origin_is_refused(running_assistant):
    import socketio

    async def run():
        chat = WebChat(running_assistant, origin="https://evil.example")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await chat.connect()

    run_async(run())


def test_a_second_client_can_neither_join_nor_write_into_anothers_session(running_assistant):
    async def run():
        owner = await WebChat(running_assistant).connect()
        first = await owner.ask("how long does the drip last?")
        stolen = owner.session["session_id"]
        intruder = await WebChat(running_assistant).connect(session_id=stolen, token="0" * 64)
        assert intruder.session["session_id"] != stolen
        forged = await WebChat(running_assistant).connect(session_id=stolen)
        assert forged.session["session_id"] != stolen
        # The intruder writes with the owner's session id in the message: it goes to its own session.
        await intruder.client.emit("user_uttered", {"message": "I want to end my life", "session_id": stolen})
        await intruder.replies_since(0)
        # The owner's conversation goes on untouched: its follow-up keeps the topic, and it never
        # received the intruder's crisis reply.
        follow = await owner.ask("and IM?")
        assert not any("911" in m.get("text", "") for m in owner.received)
        # Reconnecting with the real token resumes the owner's own conversation.
        again = await WebChat(running_assistant).connect(session_id=stolen, token=owner.session["token"])
        assert again.session["session_id"] == stolen
        for chat in (owner, intruder, forged, again):
            await chat.close()
        return first, follow

    first, follow = run_async(run())
    assert any("40 minutes to an hour" in t for t in first)
    assert any("30 to 45 minutes" in t for t in follow)


# ---- rate limits -------------------------------------------------------------------------------------------

def test_300_messages_from_one_sender_are_throttled_while_others_are_served(running_assistant):
    from bot.ops.settings import get_settings

    flood = ask_json("flooding-sender", "which is faster?")

    def one(_):
        status, body, _ = rest_from(running_assistant, flood, source="127.0.0.31")
        return status, body

    others = []

    def patient():
        for number in range(5):
            status, body, seconds = rest_from(running_assistant, ask_json(f"calm-patient-{number}", "how long does IM last?"),
                                              source="127.0.0.32")
            others.append((status, "Source:" in body, seconds))

    calm = threading.Thread(target=patient)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        calm.start()
        replies = list(pool.map(one, range(300)))
    calm.join(timeout=120)
    statuses = [status for status, _ in replies]
    assert time.monotonic() - started < 30
    # A refused message is not read, so its reply still names the emergency numbers
    refused = next(body for status, body in replies if status == 429)
    assert get_settings().emergency_number in refused and get_settings().crisis_line in refused
    assert statuses.count(429) >= 250 and statuses.count(200) <= 20 and 500 not in statuses
    assert len(others) == 5 and all(status == 200 and answered for status, answered, _ in others)


def test_a_flooding_web_chat_client_is_asked_to_slow_down_once(running_assistant):
    from bot.ops.settings import get_settings

    burst = get_settings().rate_per_sender_burst

    async def run():
        chat = await WebChat(running_assistant).connect()
        for _ in range(40):
            await chat.client.emit("user_uttered", {"message": "hello?"})
        # The refusals are immediate; the allowed messages are answered (each with the disclaimer).
        deadline = time.monotonic() + 60
        while sum("not medical advice" in m.get("text", "") for m in chat.received) < burst:
            assert time.monotonic() < deadline, chat.received
            await asyncio.sleep(0.05)
        await chat.close()
        return [m.get("text", "") for m in chat.received]

    texts = run_async(run())
    assert sum("faster than I can answer" in t for t in texts) == 1
    slow_down = next(t for t in texts if "faster than I can answer" in t)
    assert get_settings().emergency_number in slow_down and "{" not in slow_down
    assert sum("not medical advice" in t for t in texts) <= burst + 1


# ---- restarts keep conversations -------------------------------------------------------------------------

def test_a_killed_rasa_server_comes_back_and_keeps_the_conversation(healthy_assistant):
    assistant = healthy_assistant
    first = rest_ask(assistant, "survives-restart", "how long does the drip last?")
    assert any("40 minutes to an hour" in t for t in first)
    old = assistant.pid("rasa")
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: assistant.health()["services"]["rasa"] == "down", timeout=30, what="Rasa to be down")
    wait_until(lambda: assistant.health()["status"] == "ok" and assistant.pid("rasa") not in (0, old), timeout=180,
               what="the supervisor to restart the Rasa server")
    follow = rest_ask(assistant, "survives-restart", "and IM?")
    assert any("30 to 45 minutes" in t for t in follow)


def test_the_conversation_store_is_owner_only(running_assistant):
    path = running_assistant.data_dir / "conversations.db"
    assert path.stat().st_size > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(running_assistant.data_dir.stat().st_mode) == 0o700


# ---- logs -----------------------------------------------------------------------------------------------

def test_no_patient_text_reaches_any_log_on_any_path(healthy_assistant, telegram_api, twilio_api):
    """Recognisable texts through every channel and failure path; then the whole log is searched."""
    assistant = healthy_assistant
    markers = [f"wombat{n}marker" for n in range(12)]
    rest_ask(assistant, "log-rest", f"is the {markers[0]} drip safe?")
    webchat_ask(assistant, [f"is the {markers[1]} shot quick?"])
    telegram_ask(assistant, telegram_api, [f"does the {markers[2]} injection hurt?"])
    twilio_ask(assistant, twilio_api, [f"how long is the {markers[3]} infusion?"])
    rest_ask(assistant, "log-surrogate", f"bad \ud800 text {markers[4]}")
    rest_ask(assistant, "log-crisis", f"{markers[5]} I want to end my life")
    rest_ask(assistant, "log-long", f"{markers[6]} " + "long story " * 100)
    rest_from(assistant, json.dumps({"sender": "log-bad", "message": [markers[7]]}).encode())
    rest_from(assistant, json.dumps({"sender": markers[8] + " with spaces", "message": "hi"}).encode())
    send_update(assistant, {"update_id": "bad", "message": {"text": markers[9]}})
    # A client that leaves before its reply is ready.
    with socket.create_connection(("127.0.0.1", assistant.rasa_port)) as raw:
        body = json.dumps({"sender": "log-leaver", "message": f"which is safer {markers[10]}?"}).encode()
        raw.sendall(b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    # The action server down: the turn fails over to the apology.
    assistant.supervisorctl("stop", "actions")
    wait_until(lambda: assistant.health()["services"]["actions"] == "down", timeout=30, what="the action server to stop")
    assert any("went wrong" in t for t in rest_ask(assistant, "log-down", f"is IM {markers[11]} faster?"))
    # Every turn above has finished (each reply arrived; the leaver's turn ran before this one's lock).
    rest_ask(assistant, "log-leaver", "thanks")
    logs = assistant.logs()
    for marker in markers:
        assert marker not in logs, marker
    assert "Traceback" not in logs and "wombat" not in logs
    for program in ("rasa", "actions", "web"):
        for line in assistant.service_log(program).read_text().splitlines():
            assert json.loads(line)["event"] is not None, line  # one JSON object per line
