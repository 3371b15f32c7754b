"""Talking to the running assistant as each channel's clients do: REST, web chat (socket.io),
Telegram and Twilio (through the local stand-ins of their APIs in tests/standins.py).

Each ``ask`` sends one message and waits until its reply has arrived - the event, not a sleep:
every reply ends with the disclaimer or one of the channel notices - and returns the texts.
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from itertools import count
from typing import Any, Dict, List, Optional, Tuple

from twilio.request_validator import RequestValidator

from bot.channels.messaging import pseudonym
from bot.answers.wording import response_text

TOKEN = "123456789:TEST-token-for-the-stand-in"
SECRET = "telegram-webhook-secret-0123456789"
ACCOUNT = "AC" + "0" * 32
AUTH = "twilio-auth-token-for-tests"
ID_KEY = "pseudonym-key-for-tests-3f9a1c07d2b84e6a"  # CHANNEL_ID_KEY: 32 characters at least
# The test clusters require a REST token (REST_TOKEN): the REST channel as an integration behind a
# proxy would use it. The embedded test assistant has none: REST answers its own machine only.
REST_TOKEN = "rest-token-for-tests-8c41d0e97b2a4f35a6e1"
CLINIC_NUMBER = "+15557654321"
SHORT_DISCLAIMER = "General information only, not medical advice."
LONG_DISCLAIMER = "not medical advice"
# The last message of every reply: the disclaimer, or a reply that carries no health information
# (small talk and the channels' notices), recognised by the start of its domain text.
_NO_DISCLAIMER = ("utter_thanks", "utter_goodbye", "utter_iamabot", "utter_message_too_long", "utter_non_text",
                  "utter_slow_down", "utter_privacy", "utter_feedback_thanks", "utter_feedback_ask",
                  "utter_feedback_nothing", "utter_forget_ask", "utter_forgotten", "utter_forget_cancelled")
REPLY_ENDS = (LONG_DISCLAIMER, SHORT_DISCLAIMER) + tuple(response_text(name)[:30] for name in _NO_DISCLAIMER)
# The first reply of a conversation is followed by the privacy notice - unless the turn could not
# run (the apology sent without Rasa) or the message was refused (slow down).
PRIVACY_NOTICE = "Privacy:"
_NO_NOTICE = tuple(response_text(name)[:30] for name in ("utter_technical_problem", "utter_slow_down"))

update_ids = count(1000)
message_sids = count(1)
chat_ids = count(500_000)
phone_numbers = count(5_550_100_000)


def run_async(coroutine):
    """Run a coroutine to completion from synchronous test code - in a thread of its own when
    an event loop is already running here (Playwright's sync API keeps one)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def post(url: str, body: bytes, headers: Dict[str, str], timeout: float = 60) -> Tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def ends_reply(text: str) -> bool:
    return any(marker in text for marker in REPLY_ENDS) or text.startswith(PRIVACY_NOTICE)


def reply_complete(texts: List[str], *, first: bool = False) -> bool:
    """Whether ``texts`` are a whole reply (``first``: the first of its conversation)."""
    if not any(ends_reply(t) for t in texts):
        return False
    return not first or any(t.startswith(PRIVACY_NOTICE) or t.startswith(_NO_NOTICE) for t in texts)


# ---- REST ------------------------------------------------------------------------------------------

def rest_ask(assistant, sender: str, text: str) -> List[str]:
    return [m.get("text", "") for m in assistant.say(sender, text)]


# ---- web chat (socket.io) --------------------------------------------------------------------------

class WebChat:
    """A web chat client, as the widget: session request, messages, replies (python-socketio)."""

    def __init__(self, assistant, *, origin: Optional[str] = None) -> None:
        self.url = f"http://127.0.0.1:{assistant.rasa_port}"
        self.origin = origin if origin is not None else assistant.web_url.rstrip("/")
        self.session: Dict[str, str] = {}
        self.received: List[Dict[str, Any]] = []
        self.asked = 0  # messages sent in this session (the first reply brings the privacy notice)

    async def connect(self, session_id: Optional[str] = None, token: Optional[str] = None, *,
                      transports: Tuple[str, ...] = ("websocket",), cookies: Optional[Dict[str, str]] = None):
        """Connect and start (or, with its id and token, resume) a session. Long-polling keeps the
        balancer's cookie, as a browser does; ``cookies`` are sent from the start."""
        import aiohttp
        import socketio

        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # 127.0.0.1 is an IP
        if cookies:
            self._http.cookie_jar.update_cookies(cookies)
        self.client = socketio.AsyncClient(reconnection=False, http_session=self._http)
        self._confirmed = asyncio.Event()
        self._arrived = asyncio.Event()

        @self.client.on("session_confirm")
        async def confirmed(data):
            self.session = data
            self._confirmed.set()

        @self.client.on("bot_uttered")
        async def uttered(data):
            self.received.append(data)
            self._arrived.set()

        headers = {"Origin": self.origin} if self.origin else {}
        await self.client.connect(self.url, transports=list(transports), headers=headers, wait_timeout=20)
        if session_id:
            self.asked = 1  # a resumed conversation: its first reply came long ago
        await self.client.emit("session_request", {"session_id": session_id, "token": token})
        await asyncio.wait_for(self._confirmed.wait(), 20)
        return self

    async def ask(self, text: Any, *, button: bool = False, timeout: float = 60, message_id: Optional[str] = None,
                  resend: bool = False) -> List[str]:
        start, first = len(self.received), self.asked == 0
        await self.send(text, button=button, message_id=message_id, resend=resend)
        return await self.replies_since(start, timeout=timeout, first=first)

    async def send(self, text: Any, *, button: bool = False, message_id: Optional[str] = None,
                   resend: bool = False) -> None:
        payload: Dict[str, Any] = {"message": text}
        metadata = {key: True for key, on in (("button", button), ("resend", resend)) if on}
        if metadata:
            payload["metadata"] = metadata
        if message_id:
            payload["message_id"] = message_id
        self.asked += 1
        await self.client.emit("user_uttered", payload)

    async def replies_since(self, start: int, *, timeout: float = 60, first: bool = False) -> List[str]:
        deadline = time.monotonic() + timeout
        while True:
            texts = [m.get("text", "") for m in self.received[start:]]
            if reply_complete(texts, first=first):
                return texts
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete reply; got {texts}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        try:
            await self.client.disconnect()
        finally:
            await self._http.close()


def webchat_ask(assistant, texts: List[str]) -> List[List[str]]:
    """One web chat conversation: each text's reply, in order."""

    async def run():
        chat = await WebChat(assistant).connect()
        try:
            return [await chat.ask(text) for text in texts]
        finally:
            await chat.close()

    return run_async(run())


# ---- Telegram ---------------------------------------------------------------------------------------

def telegram_url(assistant) -> str:
    return f"http://127.0.0.1:{assistant.rasa_port}/webhooks/telegram/webhook"


def send_update(assistant, update: Dict[str, Any], secret: Optional[str] = SECRET) -> Tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return post(telegram_url(assistant), json.dumps(update).encode(), headers)


def text_update(text: str, chat_id: int, **extra: Any) -> Dict[str, Any]:
    return {"update_id": next(update_ids), "message": {
        "message_id": next(update_ids), "date": int(time.time()), "text": text,
        "chat": {"id": chat_id, "type": "private", "first_name": "Pat"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Pat"}, **extra}}


def sent_texts(calls: List[Dict[str, Any]]) -> List[str]:
    return [c["text"] for c in calls if c["method"] == "sendMessage"]


def wait_for_reply(fetch, timeout: float = 60, *, first: bool = False) -> List[str]:
    """Texts from ``fetch()`` once they are a whole reply (``first``: of a new conversation)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        texts = fetch()
        if reply_complete(texts, first=first):
            return texts
        time.sleep(0.05)
    raise TimeoutError(f"no complete reply; got {fetch()}")


def telegram_ask(assistant, telegram_api, texts: List[str], chat_id: Optional[int] = None) -> List[List[str]]:
    new = chat_id is None
    chat_id = chat_id or next(chat_ids)
    replies = []
    for number, text in enumerate(texts):
        start = len(sent_texts(telegram_api.recorded(chat_id=chat_id)))
        status, _ = send_update(assistant, text_update(text, chat_id))
        assert status == 200
        replies.append(wait_for_reply(lambda: sent_texts(telegram_api.recorded(chat_id=chat_id))[start:],
                                      first=new and number == 0))
    return replies


# ---- Twilio ----------------------------------------------------------------------------------------

def twilio_url(assistant) -> str:
    return f"http://127.0.0.1:{assistant.rasa_port}/webhooks/twilio/webhook"


def twilio_post(assistant, params: Dict[str, str], *, sign_with: Optional[str] = AUTH,
                signature: Optional[str] = None) -> Tuple[int, str]:
    url = twilio_url(assistant)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is None and sign_with is not None:
        signature = RequestValidator(sign_with).compute_signature(url, params)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return post(url, urllib.parse.urlencode(params).encode(), headers)


def sms(body: str, sender: str, **extra: str) -> Dict[str, str]:
    return {"MessageSid": f"SM{next(message_sids):032x}", "AccountSid": ACCOUNT, "From": sender,
            "To": CLINIC_NUMBER, "Body": body, "NumMedia": "0", **extra}


def bodies(calls: List[Dict[str, Any]]) -> List[str]:
    return [c["Body"] for c in calls]


def twilio_ask(assistant, twilio_api, texts: List[str], sender: Optional[str] = None) -> List[List[str]]:
    new = sender is None
    sender = sender or f"+{next(phone_numbers)}"
    replies = []
    for number, text in enumerate(texts):
        start = len(twilio_api.recorded(To=sender))
        status, _ = twilio_post(assistant, sms(text, sender))
        assert status == 200
        replies.append(wait_for_reply(lambda: bodies(twilio_api.recorded(To=sender))[start:],
                                      first=new and number == 0))
    return replies


def phone_env(telegram_api, twilio_api) -> Dict[str, str]:
    """Both phone channels on, against the stand-ins."""
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET, "TELEGRAM_API_URL": telegram_api.url,
        "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": AUTH, "TWILIO_API_URL": twilio_api.url,
        "CHANNEL_ID_KEY": ID_KEY,
    }


def channel_askers(prefix: str) -> Dict[str, Any]:
    """One conversation's replies on each patient channel: ``askers[channel](assistant, (telegram_api,
    twilio_api), texts)`` -> each text's reply. REST conversations are named ``prefix``-rest-..."""
    return {
        "rest": lambda a, apis, texts: [rest_ask(a, f"{prefix}-rest-{abs(hash(tuple(texts)))}", t) for t in texts],
        "webchat": lambda a, apis, texts: webchat_ask(a, texts),
        "telegram": lambda a, apis, texts: telegram_ask(a, apis[0], texts),
        "twilio": lambda a, apis, texts: twilio_ask(a, apis[1], texts),
    }


# ---- one patient, any channel, with buttons ---------------------------------------------------------

# The titles of the domain's fixed buttons, for pressing them on SMS (numbered options there).
SMS_OPTION_TITLES = {"/forget_confirm": "Yes, delete it", "/forget_cancel": "No, keep it",
                     "/forget_me": "Delete my conversation"}


CHANNELS = ["rest", "socketio", "telegram", "twilio"]


class Conversation:
    """One patient on one channel: ``say`` a text (or press a button) and get the reply's texts;
    ``sender_id`` is the id the tracker store knows the conversation by."""

    def __init__(self, assistant, apis, channel: str) -> None:
        self.assistant, self.channel = assistant, channel
        self.telegram_api, self.twilio_api = apis
        self.turns = 0
        self.last: List[Dict[str, Any]] = []  # the last reply's messages (with their buttons)
        if channel == "rest":
            self.client_id = f"patient-{uuid.uuid4().hex[:12]}"  # REST conversations have a namespace of their own
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

    def say(self, text: str, *, button: bool = False, title: Optional[str] = None) -> List[str]:
        """``button``: press the button with payload ``text`` (on SMS: reply with the number of
        the option titled ``title``, or of the payload's title in SMS_OPTION_TITLES)."""
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
        sent = self._option(title or SMS_OPTION_TITLES.get(text, "")) if button else text
        assert twilio_post(self.assistant, sms(sent, self.phone))[0] == 200
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
        return {"update_id": next(update_ids), "callback_query": {
            "id": f"cbq-{uuid.uuid4().hex[:8]}", "chat_instance": "1", "data": payload,
            "from": {"id": self.chat_id, "is_bot": False, "first_name": "Pat"},
            "message": {"message_id": 5, "date": int(time.time()), "chat": {"id": self.chat_id, "type": "private"},
                        "text": "..."}}}

    def _option(self, wanted: str) -> str:
        """SMS: the number of the option offered with this title (e.g. "1")."""
        for text in (m["text"] for m in self.last):
            for line in text.splitlines():
                number, _, title = line.partition(". ")
                if title.strip() == wanted:
                    return number
        raise AssertionError(f"no SMS option titled {wanted!r} in {self.last}")

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


# ---- phone patients under load (bot/evaluation/cluster_load.py) --------------------------------

def phone_doors(base: str, telegram_api, twilio_api) -> list:
    """Telegram and Twilio patients for ``run_patients``: webhooks posted to ``base`` (the
    balancer's public side) as the platforms post them, replies read from the stand-ins."""
    import uuid

    from bot.channels.messaging import pseudonym
    from bot.evaluation.cluster_load import PhoneDoor

    telegram_url, twilio_url = f"{base}/webhooks/telegram/webhook", f"{base}/webhooks/twilio/webhook"

    async def post_update(session, chat: str, update_id: str, text: str) -> Tuple[int, str]:
        update = text_update(text, int(chat))
        update["update_id"] = int(update_id)
        async with session.post(telegram_url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as reply:
            await reply.read()
            return reply.status, reply.headers.get("X-Served-By", "")

    async def post_sms(session, number: str, sid: str, text: str) -> Tuple[int, str]:
        form = {**sms(text, number), "MessageSid": sid}
        signature = RequestValidator(AUTH).compute_signature(twilio_url, form)
        async with session.post(twilio_url, data=form, headers={"X-Twilio-Signature": signature}) as reply:
            await reply.read()
            return reply.status, reply.headers.get("X-Served-By", "")

    return [
        PhoneDoor("telegram", new_address=lambda rng: str(next(chat_ids)),
                  new_delivery=lambda: str(next(update_ids)), post=post_update,
                  sent=lambda chat: sent_texts(telegram_api.recorded(chat_id=chat)),
                  conversation=lambda chat: pseudonym(key=ID_KEY, channel="telegram", address=chat)),
        PhoneDoor("twilio", new_address=lambda rng: f"+{next(phone_numbers)}",
                  new_delivery=lambda: f"SM{uuid.uuid4().hex}", post=post_sms,
                  sent=lambda number: bodies(twilio_api.recorded(To=number)),
                  conversation=lambda number: pseudonym(key=ID_KEY, channel="twilio", address=number)),
    ]
