"""Telegram and Twilio (SMS, WhatsApp) end to end and offline: the real assistant with both
channels on, pointed at local stand-ins of the Bot API and Twilio's API; real-shaped updates
and signed form posts go to the webhooks."""
from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from itertools import count

import pytest
from twilio.request_validator import RequestValidator

from bot.channels.messaging import plain_text, pseudonym, split_message, telegram_html, whatsapp_text
from bot.harness import start_assistant
from tests.standins import TelegramBotApi, TwilioApi

TOKEN = "123456789:TEST-token-for-the-stand-in"
SECRET = "telegram-webhook-secret-0123456789"
ACCOUNT = "AC" + "0" * 32
AUTH = "twilio-auth-token-for-tests"
ID_KEY = "pseudonym-key-for-tests"
PHONE = "+15551234567"
CLINIC_NUMBER = "+15557654321"
CHAT_ID = 987654321
SHORT_DISCLAIMER = "General information only, not medical advice."
update_ids = count(1000)
message_sids = count(1)


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

@pytest.fixture(scope="module")
def telegram_api():
    api = TelegramBotApi(TOKEN)
    yield api
    api.close()


@pytest.fixture(scope="module")
def twilio_api():
    api = TwilioApi(ACCOUNT, AUTH)
    yield api
    api.close()


@pytest.fixture(scope="module")
def phone_assistant(trained_model, telegram_api, twilio_api, tmp_path_factory):
    folder = tmp_path_factory.mktemp("phones")
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET, "TELEGRAM_API_URL": telegram_api.url,
        "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": AUTH, "TWILIO_API_URL": twilio_api.url,
        "CHANNEL_ID_KEY": ID_KEY, "TRACKER_STORE_DB": str(folder / "trackers.db"),
    }
    with start_assistant(folder / "serve.log", extra_env=env) as running:
        running.tracker_db = folder / "trackers.db"
        yield running


def post(url, body: bytes, headers):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def telegram_url(assistant):
    return f"http://127.0.0.1:{assistant.rasa_port}/webhooks/telegram/webhook"


def send_update(assistant, update, secret=SECRET):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return post(telegram_url(assistant), json.dumps(update).encode(), headers)


def text_update(text, chat_id=CHAT_ID, **extra):
    return {"update_id": next(update_ids), "message": {
        "message_id": next(update_ids), "date": int(time.time()), "text": text,
        "chat": {"id": chat_id, "type": "private", "first_name": "Pat"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Pat"}, **extra}}


def sent_texts(calls):
    return [c["text"] for c in calls if c["method"] == "sendMessage"]


def test_telegram_answers_with_source_and_short_disclaimer(phone_assistant, telegram_api):
    chat = 1001
    status, body = send_update(phone_assistant, text_update("which is faster, IV or IM?", chat_id=chat))
    assert status == 200 and "Traceback" not in body
    calls = telegram_api.wait_for(2, method="sendMessage", chat_id=chat)
    texts = sent_texts(calls)
    assert any("Source:" in t and "minutes" in t for t in texts)
    assert texts[-1] == SHORT_DISCLAIMER
    assert all(c["parse_mode"] == "HTML" for c in calls)
    assert any("<b>IV infusion:</b>" in t for t in texts)
    assert all(len(t) <= 4096 for t in texts)


def test_telegram_rejects_missing_or_wrong_secret(phone_assistant, telegram_api):
    chat = 1002
    assert send_update(phone_assistant, text_update("hi", chat_id=chat), secret=None)[0] == 403
    assert send_update(phone_assistant, text_update("hi", chat_id=chat), secret="wrong")[0] == 403
    time.sleep(2)
    assert telegram_api.recorded(chat_id=chat) == []


def test_telegram_duplicate_update_is_answered_once(phone_assistant, telegram_api):
    chat = 1003
    update = text_update("how long does the drip last?", chat_id=chat)
    assert send_update(phone_assistant, update)[0] == 200
    assert send_update(phone_assistant, update)[0] == 200
    telegram_api.wait_for(2, method="sendMessage", chat_id=chat)
    time.sleep(2)  # time for a second, duplicate answer to arrive if there were one
    calls = telegram_api.recorded(method="sendMessage", chat_id=chat)
    assert len([t for t in sent_texts(calls) if "Source:" in t]) == 1


def test_telegram_inline_keyboard_and_callback_query(phone_assistant, telegram_api):
    chat = 1004
    send_update(phone_assistant, text_update("hello", chat_id=chat))
    calls = telegram_api.wait_for(2, method="sendMessage", chat_id=chat)
    keyboard = next(c["reply_markup"] for c in calls if c.get("reply_markup"))["inline_keyboard"]
    buttons = [row[0] for row in keyboard]
    assert 3 <= len(buttons) <= 4
    onset = next(b for b in buttons if b["text"] == "Which works faster?")
    callback = {"update_id": next(update_ids), "callback_query": {
        "id": "cbq-77", "chat_instance": "1", "data": onset["callback_data"],
        "from": {"id": chat, "is_bot": False, "first_name": "Pat"},
        "message": {"message_id": 5, "date": int(time.time()), "chat": {"id": chat, "type": "private"}, "text": "..."}}}
    assert send_update(phone_assistant, callback)[0] == 200
    assert telegram_api.wait_for(1, method="answerCallbackQuery", callback_query_id="cbq-77")
    texts = sent_texts(telegram_api.wait_for(len(calls) + 2, method="sendMessage", chat_id=chat))
    assert any("Source:" in t and "minutes" in t for t in texts[len(calls):])


@pytest.mark.parametrize("kind, extra", [
    ("photo", {"photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90}]}),
    ("sticker", {"sticker": {"file_id": "s1", "file_unique_id": "u2", "width": 512, "height": 512, "is_animated": False}}),
    ("voice", {"voice": {"file_id": "v1", "file_unique_id": "u3", "duration": 3}}),
    ("location", {"location": {"latitude": 51.5, "longitude": -0.12}}),
])
def test_telegram_non_text_messages_get_a_polite_reply(phone_assistant, telegram_api, kind, extra):
    chat = 1100 + ["photo", "sticker", "voice", "location"].index(kind)
    update = text_update("", chat_id=chat, **extra)
    del update["message"]["text"]
    status, body = send_update(phone_assistant, update)
    assert status == 200 and "Traceback" not in body
    texts = sent_texts(telegram_api.wait_for(1, method="sendMessage", chat_id=chat))
    assert any("only read text" in t for t in texts)


def test_telegram_edited_message_and_bad_json(phone_assistant, telegram_api):
    chat = 1200
    edited = text_update("what about IM?", chat_id=chat)
    edited["edited_message"] = edited.pop("message")
    assert send_update(phone_assistant, edited)[0] == 200
    assert any("only read text" in t for t in sent_texts(telegram_api.wait_for(1, method="sendMessage", chat_id=chat)))
    status, body = post(telegram_url(phone_assistant), b"{not json",
                        {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert status == 400 and "Traceback" not in body and "File " not in body


def test_telegram_crisis_comes_first(phone_assistant, telegram_api):
    chat = 1300
    send_update(phone_assistant, text_update("how long does the shot last? I want to kill myself", chat_id=chat))
    texts = sent_texts(telegram_api.wait_for(1, method="sendMessage", chat_id=chat))
    joined = "\n".join(texts)
    assert "911" in joined and "988" in joined and "Source:" not in joined


def test_telegram_webhook_registration_is_a_separate_command(phone_assistant, telegram_api):
    import os
    import subprocess
    import sys

    from bot.settings import PROJECT_ROOT

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

def twilio_url(assistant):
    return f"http://127.0.0.1:{assistant.rasa_port}/webhooks/twilio/webhook"


def twilio_post(assistant, params, *, sign_with=AUTH, signature=None):
    url = twilio_url(assistant)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is None and sign_with is not None:
        signature = RequestValidator(sign_with).compute_signature(url, params)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return post(url, urllib.parse.urlencode(params).encode(), headers)


def sms(body, sender=PHONE, **extra):
    return {"MessageSid": f"SM{next(message_sids):032x}", "AccountSid": ACCOUNT, "From": sender,
            "To": CLINIC_NUMBER, "Body": body, "NumMedia": "0", **extra}


def bodies(calls):
    return [c["Body"] for c in calls]


def test_twilio_sms_answer_with_short_disclaimer(phone_assistant, twilio_api):
    sender = "+15550000001"
    status, body = twilio_post(phone_assistant, sms("which is faster, IV or IM?", sender))
    assert status == 200 and body.startswith("<?xml") and "<Response>" in body
    calls = twilio_api.wait_for(2, To=sender)
    assert all(c["From"] == CLINIC_NUMBER for c in calls)
    texts = bodies(calls)
    assert any("Source:" in t and "minutes" in t for t in texts)
    assert texts[-1] == SHORT_DISCLAIMER
    assert not any("**" in t for t in texts)  # SMS: no markdown markers
    assert all(len(t) <= 1600 for t in texts)


def test_twilio_rejects_unsigned_and_wrongly_signed_requests(phone_assistant, twilio_api):
    sender = "+15550000002"
    assert twilio_post(phone_assistant, sms("hi", sender), sign_with=None)[0] == 403
    assert twilio_post(phone_assistant, sms("hi", sender), sign_with="not-the-token")[0] == 403
    params = sms("hi", sender)
    good = RequestValidator(AUTH).compute_signature(twilio_url(phone_assistant), params)
    params["Body"] = "tampered"
    assert twilio_post(phone_assistant, params, signature=good)[0] == 403
    time.sleep(2)
    assert twilio_api.recorded(To=sender) == []


def test_twilio_numbered_options_select_by_number(phone_assistant, twilio_api):
    sender = "+15550000003"
    twilio_post(phone_assistant, sms("hello", sender))
    greeting = bodies(twilio_api.wait_for(2, To=sender))
    options = next(t for t in greeting if "\n1. " in t)
    lines = [line for line in options.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")]
    assert 3 <= len(lines) <= 4
    number = next(line.split(".")[0] for line in lines if "faster" in line)
    twilio_post(phone_assistant, sms(number, sender))
    answer = bodies(twilio_api.wait_for(len(greeting) + 2, To=sender))[len(greeting):]
    assert any("Source:" in t and "minutes" in t for t in answer)


@pytest.mark.parametrize("extra", [
    {"Body": "", "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/media/1", "MediaContentType0": "image/jpeg"},
    {"Body": "", "Latitude": "51.5", "Longitude": "-0.12"},
    {"Body": "", "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/media/2", "MediaContentType0": "audio/ogg"},
])
def test_twilio_media_only_and_location_get_a_polite_reply(phone_assistant, twilio_api, extra):
    sender = f"+1555000{len(twilio_api.calls):04d}"
    status, body = twilio_post(phone_assistant, {**sms("", sender), **extra})
    assert status == 200 and "Traceback" not in body
    assert any("only read text" in t for t in bodies(twilio_api.wait_for(1, To=sender)))


def test_twilio_duplicate_delivery_and_whatsapp_formatting(phone_assistant, twilio_api):
    sender = "whatsapp:+15550000009"
    params = sms("which is faster, IV or IM?", sender)
    assert twilio_post(phone_assistant, params)[0] == 200
    assert twilio_post(phone_assistant, params)[0] == 200
    twilio_api.wait_for(2, To=sender)
    time.sleep(2)
    texts = bodies(twilio_api.recorded(To=sender))
    assert len([t for t in texts if "Source:" in t]) == 1
    assert any("*IV infusion:*" in t for t in texts) and not any("**" in t for t in texts)


def test_twilio_crisis_comes_first(phone_assistant, twilio_api):
    sender = "+15550000010"
    twilio_post(phone_assistant, sms("I took too much and can't breathe", sender))
    joined = "\n".join(bodies(twilio_api.wait_for(1, To=sender)))
    assert "911" in joined and "988" in joined and "Source:" not in joined


# ---- privacy --------------------------------------------------------------------------------------

def test_no_clear_text_phone_number_or_chat_id_in_the_tracker_store_or_logs(phone_assistant, twilio_api, telegram_api):
    marker = "quokka"  # a word only this message contains
    twilio_post(phone_assistant, sms(f"is the {marker} injection painful?", PHONE))
    twilio_api.wait_for(1, To=PHONE)
    send_update(phone_assistant, text_update(f"does the {marker} drip hurt?"))
    telegram_api.wait_for(1, method="sendMessage", chat_id=CHAT_ID)

    with sqlite3.connect(phone_assistant.tracker_db) as db:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type='table'")]
        dump = "\n".join(str(row) for table in tables for row in db.execute(f"select * from {table}"))
        senders = {row[0] for row in db.execute("select distinct sender_id from events")}
    assert marker in dump  # the conversations really are in this store
    for secret in (PHONE, PHONE[1:], "5551234567", str(CHAT_ID), CLINIC_NUMBER[1:]):
        assert secret not in dump
    assert pseudonym(key=ID_KEY, channel="twilio", address=PHONE) in senders
    assert pseudonym(key=ID_KEY, channel="telegram", address=str(CHAT_ID)) in senders

    log = phone_assistant.log.read_text()
    assert marker not in log and PHONE not in log and str(CHAT_ID) not in log
