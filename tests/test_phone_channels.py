"""Telegram and Twilio (SMS, WhatsApp) end to end and offline: the real assistant with both
channels on, pointed at local stand-ins of the Bot API and Twilio's API; real-shaped updates
and signed form posts go to the webhooks."""
from __future__ import annotations

import json
import sqlite3
import time

import pytest
from twilio.request_validator import RequestValidator

from bot.channels.messaging import plain_text, pseudonym, split_message, telegram_html, whatsapp_text
from tests import clients
from tests.clients import (
    AUTH,
    ID_KEY,
    SECRET,
    SHORT_DISCLAIMER,
    TOKEN,
    bodies,
    post,
    send_update,
    sent_texts,
    sms,
    telegram_url,
    twilio_post,
    twilio_url,
)

PHONE = "+15551234567"
CHAT_ID = 987654321


def text_update(text, chat_id=CHAT_ID, **extra):
    return clients.text_update(text, chat_id, **extra)


# ---- formatting and splitting (no servers) ---------------------------------------------------

def test_split_message_keeps_every_part_under_the_limit():
    text = "\n".join(f"line {i} " + "word " * 30 for i in range(200))
    parts = split_message(text, limit=1600)
    assert len(parts) > 1 and all(len(p) <= 1600 for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())
    assert split_message("x" * 5000, limit=4000) == ["x" * 4000, "x" * 1000]
    assert split_message("short", limit=10) == ["short"]


def test_text_formats_for_each_platform():
    text = "**IV infusion:** 1 < 2 & <b>\n_not medical advice_"
    assert telegram_html(text) == "<b>IV infusion:</b> 1 &lt; 2 &amp; &lt;b&gt;\n<i>not medical advice</i>"
    assert whatsapp_text(text) == "*IV infusion:* 1 < 2 & <b>\n_not medical advice_"
    assert plain_text(text) == "IV infusion: 1 < 2 & <b>\nnot medical advice"


def test_pseudonyms_are_keyed_and_stable():
    one = pseudonym(key="k1", channel="twilio", address=PHONE)
    assert one == pseudonym(key="k1", channel="twilio", address=PHONE)
    assert one != pseudonym(key="k2", channel="twilio", address=PHONE)
    assert PHONE not in one and "5551234567" not in one


# ---- the running assistant ------------------------------------------------------------------------

def test_telegram_answers_with_source_and_short_disclaimer(running_assistant, telegram_api):
    chat = 1001
    status, body = send_update(running_assistant, text_update("which is faster, IV or IM?", chat_id=chat))
    assert status == 200 and "Traceback" not in body
    calls = telegram_api.wait_for(3, method="sendMessage", chat_id=chat)
    texts = sent_texts(calls)
    assert any("Source:" in t and "minutes" in t for t in texts)
    # The short disclaimer with the rating buttons, then (first reply) the privacy notice.
    assert texts[-2].startswith(SHORT_DISCLAIMER) and texts[-1].startswith("Privacy:")
    assert all(c["parse_mode"] == "HTML" for c in calls)
    assert any("<b>IV infusion:</b>" in t for t in texts)
    assert all(len(t) <= 4096 for t in texts)


def test_telegram_rejects_missing_or_wrong_secret(running_assistant, telegram_api):
    chat = 1002
    assert send_update(running_assistant, text_update("hi", chat_id=chat), secret=None)[0] == 403
    assert send_update(running_assistant, text_update("hi", chat_id=chat), secret="wrong")[0] == 403
    # A later, valid message of the same chat is answered after anything sent before it (turns of
    # one conversation run in order): only its reply is there.
    assert send_update(running_assistant, text_update("how long does the drip last?", chat_id=chat))[0] == 200
    texts = sent_texts(telegram_api.wait_for(1, method="sendMessage", chat_id=chat))
    assert "Hello" not in "\n".join(texts) and any("Source:" in t for t in texts)


def test_telegram_duplicate_update_is_answered_once(running_assistant, telegram_api):
    chat = 1003
    update = text_update("how long does the drip last?", chat_id=chat)
    assert send_update(running_assistant, update)[0] == 200
    assert send_update(running_assistant, update)[0] == 200
    # A third, different message is answered after any turn the duplicate could have started.
    assert send_update(running_assistant, text_update("thanks", chat_id=chat))[0] == 200
    telegram_api.wait_for(1, method="sendMessage", chat_id=chat, text="You're welcome! Is there anything else you'd like to know?")
    calls = telegram_api.recorded(method="sendMessage", chat_id=chat)
    assert len([t for t in sent_texts(calls) if "Source:" in t]) == 1


def test_telegram_inline_keyboard_and_callback_query(running_assistant, telegram_api):
    chat = 1004
    send_update(running_assistant, text_update("hello", chat_id=chat))
    calls = telegram_api.wait_for(2, method="sendMessage", chat_id=chat)
    keyboard = next(c["reply_markup"] for c in calls if c.get("reply_markup"))["inline_keyboard"]
    buttons = [row[0] for row in keyboard]
    assert 3 <= len(buttons) <= 4
    onset = next(b for b in buttons if b["text"] == "Which works faster?")
    callback = {"update_id": next(clients.update_ids), "callback_query": {
        "id": "cbq-77", "chat_instance": "1", "data": onset["callback_data"],
        "from": {"id": chat, "is_bot": False, "first_name": "Pat"},
        "message": {"message_id": 5, "date": int(time.time()), "chat": {"id": chat, "type": "private"}, "text": "..."}}}
    assert send_update(running_assistant, callback)[0] == 200
    assert telegram_api.wait_for(1, method="answerCallbackQuery", callback_query_id="cbq-77")
    texts = sent_texts(telegram_api.wait_for(len(calls) + 2, method="sendMessage", chat_id=chat))
    assert any("Source:" in t and "minutes" in t for t in texts[len(calls):])


@pytest.mark.parametrize("kind, extra", [
    ("photo", {"photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90}]}),
    ("sticker", {"sticker": {"file_id": "s1", "file_unique_id": "u2", "width": 512, "height": 512, "is_animated": False}}),
    ("voice", {"voice": {"file_id": "v1", "file_unique_id": "u3", "duration": 3}}),
    ("location", {"location": {"latitude": 51.5, "longitude": -0.12}}),
])
def test_telegram_non_text_messages_get_a_polite_reply(running_assistant, telegram_api, kind, extra):
    chat = 1100 + ["photo", "sticker", "voice", "location"].index(kind)
    update = text_update("", chat_id=chat, **extra)
    del update["message"]["text"]
    status, body = send_update(running_assistant, update)
    assert status == 200 and "Traceback" not in body
    texts = sent_texts(telegram_api.wait_for(1, method="sendMessage", chat_id=chat))
    assert any("only read text" in t for t in texts)


def test_telegram_edited_message_and_bad_json(running_assistant, telegram_api):
    chat = 1200
    edited = text_update("what about IM?", chat_id=chat)
    edited["edited_message"] = edited.pop("message")
    assert send_update(running_assistant, edited)[0] == 200
    assert any("only read text" in t for t in sent_texts(telegram_api.wait_for(1, method="sendMessage", chat_id=chat)))
    # Malformed updates are acknowledged (200, so Telegram does not resend them for ever) and dropped.
    for body in (b"{not json", b"[1, 2]", b'{"update_id": 5, "message": "x"}', b'{"update_id": 6, "message": {"chat": 3}}'):
        status, reply = post(telegram_url(running_assistant), body,
                             {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert status == 200 and "Traceback" not in reply and "File " not in reply


def test_telegram_crisis_comes_first(running_assistant, telegram_api):
    chat = 1300
    send_update(running_assistant, text_update("how long does the shot last? I want to kill myself", chat_id=chat))
    texts = sent_texts(telegram_api.wait_for(1, method="sendMessage", chat_id=chat))
    joined = "\n".join(texts)
    assert "911" in joined and "988" in joined and "Source:" not in joined


def test_telegram_webhook_registration_is_a_separate_command(running_assistant, telegram_api):
    import os
    import subprocess
    import sys

    from bot.ops.settings import PROJECT_ROOT

    # Starting the assistant registered nothing.
    assert telegram_api.recorded(method="setWebhook") == []
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET,
           "TELEGRAM_API_URL": telegram_api.url, "RASA_TELEMETRY_ENABLED": "false"}
    result = subprocess.run([sys.executable, "-m", "bot", "telegram-webhook", "https://clinic.example/webhooks/telegram/webhook"],
                            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    call, = telegram_api.recorded(method="setWebhook")
    assert call["url"] == "https://clinic.example/webhooks/telegram/webhook"
    assert call["secret_token"] == SECRET
    assert set(json.loads(call["allowed_updates"])) == {"message", "edited_message", "callback_query"}


# ---- Twilio ---------------------------------------------------------------------------------------

def test_twilio_sms_answer_with_short_disclaimer(running_assistant, twilio_api):
    sender = "+15550000001"
    status, body = twilio_post(running_assistant, sms("which is faster, IV or IM?", sender))
    assert status == 200 and body.startswith("<?xml") and "<Response>" in body
    calls = twilio_api.wait_for(3, To=sender)
    assert all(c["From"] == clients.CLINIC_NUMBER for c in calls)
    texts = bodies(calls)
    assert any("Source:" in t and "minutes" in t for t in texts)
    assert texts[-2].startswith(SHORT_DISCLAIMER) and texts[-1].startswith("Privacy:")
    assert not any("**" in t for t in texts)  # SMS: no markdown markers
    assert all(len(t) <= 1600 for t in texts)


def test_twilio_rejects_unsigned_and_wrongly_signed_requests(running_assistant, twilio_api):
    sender = "+15550000002"
    assert twilio_post(running_assistant, sms("hi", sender), sign_with=None)[0] == 403
    assert twilio_post(running_assistant, sms("hi", sender), sign_with="not-the-token")[0] == 403
    params = sms("hi", sender)
    good = RequestValidator(AUTH).compute_signature(twilio_url(running_assistant), params)
    params["Body"] = "tampered"
    assert twilio_post(running_assistant, params, signature=good)[0] == 403
    assert twilio_post(running_assistant, sms("hi", sender), signature="x" * 28)[0] == 403
    # A later, valid message from the same number is answered after anything sent before it.
    assert twilio_post(running_assistant, sms("how long does the drip last?", sender))[0] == 200
    texts = bodies(twilio_api.wait_for(1, To=sender))
    assert "Hello" not in "\n".join(texts) and any("Source:" in t for t in texts)


def test_twilio_numbered_options_select_by_number(running_assistant, twilio_api):
    sender = "+15550000003"
    twilio_post(running_assistant, sms("hello", sender))
    greeting = bodies(twilio_api.wait_for(2, To=sender))
    options = next(t for t in greeting if "\n1. " in t)
    lines = [line for line in options.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")]
    assert 3 <= len(lines) <= 4
    number = next(line.split(".")[0] for line in lines if "faster" in line)
    twilio_post(running_assistant, sms(number, sender))
    answer = bodies(twilio_api.wait_for(len(greeting) + 2, To=sender))[len(greeting):]
    assert any("Source:" in t and "minutes" in t for t in answer)


@pytest.mark.parametrize("extra", [
    {"Body": "", "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/media/1", "MediaContentType0": "image/jpeg"},
    {"Body": "", "Latitude": "51.5", "Longitude": "-0.12"},
    {"Body": "", "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/media/2", "MediaContentType0": "audio/ogg"},
])
def test_twilio_media_only_and_location_get_a_polite_reply(running_assistant, twilio_api, extra):
    sender = f"+{next(clients.phone_numbers)}"
    status, body = twilio_post(running_assistant, {**sms("", sender), **extra})
    assert status == 200 and "Traceback" not in body
    assert any("only read text" in t for t in bodies(twilio_api.wait_for(1, To=sender)))


def test_twilio_duplicate_delivery_and_whatsapp_formatting(running_assistant, twilio_api):
    sender = "whatsapp:+15550000009"
    params = sms("which is faster, IV or IM?", sender)
    assert twilio_post(running_assistant, params)[0] == 200
    assert twilio_post(running_assistant, params)[0] == 200
    # A third, different message is answered after any turn the duplicate could have started.
    assert twilio_post(running_assistant, sms("thanks", sender))[0] == 200
    twilio_api.wait_for(1, To=sender, Body="You're welcome! Is there anything else you'd like to know?")
    texts = bodies(twilio_api.recorded(To=sender))
    assert len([t for t in texts if "Source:" in t]) == 1
    assert any("*IV infusion:*" in t for t in texts) and not any("**" in t for t in texts)


def test_twilio_crisis_comes_first(running_assistant, twilio_api):
    sender = "+15550000010"
    twilio_post(running_assistant, sms("I took too much and can't breathe", sender))
    joined = "\n".join(bodies(twilio_api.wait_for(1, To=sender)))
    assert "911" in joined and "988" in joined and "Source:" not in joined


# ---- privacy --------------------------------------------------------------------------------------

def test_no_clear_text_phone_number_or_chat_id_in_the_tracker_store_or_logs(running_assistant, twilio_api, telegram_api):
    marker = "quokka"  # a word only this message contains
    twilio_post(running_assistant, sms(f"is the {marker} injection painful?", PHONE))
    twilio_api.wait_for(1, To=PHONE)
    send_update(running_assistant, text_update(f"does the {marker} drip hurt?"))
    telegram_api.wait_for(1, method="sendMessage", chat_id=CHAT_ID)

    with sqlite3.connect(running_assistant.data_dir / "conversations.db") as db:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type='table'")]
        dump = "\n".join(str(row) for table in tables for row in db.execute(f"select * from {table}"))
        senders = {row[0] for row in db.execute("select distinct sender_id from events")}
    assert marker in dump  # the conversations really are in this store
    for secret in (PHONE, PHONE[1:], "5551234567", str(CHAT_ID), clients.CLINIC_NUMBER[1:]):
        assert secret not in dump
    assert pseudonym(key=ID_KEY, channel="twilio", address=PHONE) in senders
    assert pseudonym(key=ID_KEY, channel="telegram", address=str(CHAT_ID)) in senders

    log = running_assistant.logs()
    assert marker not in log and PHONE not in log and str(CHAT_ID) not in log
