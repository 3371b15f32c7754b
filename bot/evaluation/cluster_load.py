"""Patients under faults: many simulated patients (REST and web chat) talk to the cluster for a
fixed time while faults are injected (an instance killed, PostgreSQL restarted); then every
message's replies are counted and every conversation is read back from PostgreSQL.

Used by the fault test (tests/test_cluster.py) and the benchmark's cluster section
(bot/evaluation/benchmark.py), so the report shows the same counts the test checks.

A patient's client behaves as the widget does: each message has an id; when the connection is
lost before the reply came (a killed instance), it reconnects and sends the message again,
marked ``resend`` - the assistant answers it once (bot/rasa/patches.py). A REST request or a
phone webhook (Telegram, Twilio: ``phone`` patients, when the test's stand-ins of their APIs
are given) in flight on the killed instance is sent again to the other one by the balancer
itself: every such request must get its 200 the first time (``failed_requests`` counts those
that did not), and its reply exactly once - counted from what the client got (the phone
channels' replies from what the stand-ins were asked to send) and checked against the
conversation stored in PostgreSQL.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple


def percentile(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


QUESTIONS = [
    "which is faster, IV or IM?", "how long does the drip last?", "and IM?", "is the shot painful?",
    "what side effects can happen?", "can I drive home afterwards?", "what about the other one?",
    "how is the dose controlled?", "thanks",
]
REPLY_TIMEOUT = 60.0


def complete(texts: List[str]) -> bool:
    """A reply is complete when its last part has arrived: the disclaimer (or, for small talk,
    a reply that needs none)."""
    from bot.answers.wording import response_text

    ends = ("not medical advice",) + tuple(response_text(name)[:30] for name in (
        "utter_thanks", "utter_goodbye", "utter_iamabot", "utter_message_too_long", "utter_non_text", "utter_slow_down"))
    return any(end in text for text in texts for end in ends)


@dataclass
class Message:
    id: str
    text: str
    replies: int = 0  # complete replies received
    apologies: int = 0  # the turn failed and the patient was told so
    resends: int = 0
    failed: int = 0  # requests that got no 200 (an error status or a lost connection)
    latency_ms: Optional[float] = None
    first_reply: int = 0  # phone: where its reply starts among the conversation's sent messages


@dataclass
class Patient:
    kind: str  # "rest", "webchat", "telegram" or "twilio"
    sender: str = ""
    messages: List[Message] = field(default_factory=list)
    reconnects: int = 0
    stored_as: str = ""  # phone: the conversation id in the tracker store (a keyed hash of the address)


@dataclass(frozen=True)
class PhoneDoor:
    """How a phone patient reaches the balancer's public side, and what the platform (a stand-in
    of its API) was asked to send (tests/clients.py makes them)."""

    kind: str  # "telegram" or "twilio"
    new_address: Callable[[random.Random], str]  # a chat id or a phone number
    new_delivery: Callable[[], str]  # an update_id or a MessageSid
    # (aiohttp session, address, delivery, text) -> (status, the instance that answered: X-Served-By)
    post: Callable[[Any, str, str, str], Awaitable[Tuple[int, str]]]
    sent: Callable[[str], List[str]]  # address -> the texts sent to it so far
    conversation: Callable[[str], str]  # address -> the conversation id in the tracker store


def _apology(texts: List[str]) -> bool:
    from bot.answers.wording import response_text

    return any(response_text("utter_technical_problem")[:40] in text for text in texts)


async def rest_patient(session: Any, url: str, patient: Patient, stop_at: float, rng: random.Random,
                       think: Tuple[float, float], headers: Optional[Dict[str, str]] = None) -> None:
    import aiohttp

    patient.sender = f"load-rest-{uuid.uuid4().hex[:12]}"
    while time.monotonic() < stop_at:
        message = Message(uuid.uuid4().hex, rng.choice(QUESTIONS))
        patient.messages.append(message)
        started = time.perf_counter()
        deadline = time.monotonic() + REPLY_TIMEOUT
        while time.monotonic() < deadline:
            body: Dict[str, Any] = {"sender": patient.sender, "message": message.text, "message_id": message.id}
            if message.resends:
                body["metadata"] = {"resend": True}
            try:
                async with session.post(url, json=body, headers=headers) as response:
                    payload = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError):
                status, payload = 0, None
            if status == 200 and isinstance(payload, list):
                texts = [m.get("text", "") for m in payload]
                if _apology(texts):
                    message.apologies += 1
                elif complete(texts):
                    message.replies += 1
                    message.latency_ms = (time.perf_counter() - started) * 1000
                break
            message.failed += 1
            if status == 503 and isinstance(payload, dict) and _apology([m.get("text", "") for m in payload.get("messages", [])]):
                message.apologies += 1
                break
            # the connection was lost (an instance killed mid-turn) or the balancer had no
            # instance for a moment: send the same message again, marked as a resend
            message.resends += 1
            await asyncio.sleep(0.5)
        await asyncio.sleep(rng.uniform(*think))


class _WebChatClient:
    """One browser tab: connects through the balancer, resumes its session after a lost
    connection, and resends an unanswered message."""

    def __init__(self, url: str, origin: str, patient: Patient) -> None:
        self.url, self.origin, self.patient = url, origin, patient
        self.session: Dict[str, str] = {}
        self.client: Any = None
        self.http: Any = None
        self.texts: Dict[str, List[str]] = {}
        self.changed = asyncio.Event()

    async def connect(self) -> None:
        import aiohttp
        import socketio

        if self.http is None:
            self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        client = socketio.AsyncClient(reconnection=False, http_session=self.http)
        confirmed = asyncio.Event()

        @client.on("session_confirm")
        async def on_confirm(data: Dict[str, str]) -> None:
            self.session = data
            confirmed.set()

        @client.on("bot_uttered")
        async def on_reply(data: Dict[str, Any]) -> None:
            reply_to = data.get("reply_to")
            if isinstance(reply_to, str):
                self.texts.setdefault(reply_to, []).append(data.get("text", ""))
                self.changed.set()

        @client.on("disconnect")
        async def on_disconnect() -> None:
            self.changed.set()

        await client.connect(self.url, transports=["websocket"], headers={"Origin": self.origin}, wait_timeout=10)
        await client.emit("session_request", {"session_id": self.session.get("session_id"),
                                              "token": self.session.get("token")})
        await asyncio.wait_for(confirmed.wait(), 10)
        self.client = client
        self.patient.sender = self.session["session_id"]

    async def ensure_connected(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self.client is not None and self.client.connected:
                return True
            if self.client is not None:
                self.patient.reconnects += 1
                try:
                    await self.client.disconnect()
                except Exception:  # noqa: BLE001 - already gone
                    pass
            try:
                await self.connect()
                return True
            except Exception:  # noqa: BLE001 - the balancer may have no instance for a moment
                self.client = None
                await asyncio.sleep(0.5)
        return False

    async def close(self) -> None:
        if self.client is not None:
            try:
                await self.client.disconnect()
            except Exception:  # noqa: BLE001
                pass
        if self.http is not None:
            await self.http.close()


async def webchat_patient(url: str, origin: str, patient: Patient, stop_at: float, rng: random.Random,
                          think: Tuple[float, float]) -> None:
    chat = _WebChatClient(url, origin, patient)
    try:
        if not await chat.ensure_connected(time.monotonic() + 30):
            return
        while time.monotonic() < stop_at:
            message = Message(uuid.uuid4().hex, rng.choice(QUESTIONS))
            patient.messages.append(message)
            started = time.perf_counter()
            deadline = time.monotonic() + REPLY_TIMEOUT
            sent_on: Optional[Any] = None
            while time.monotonic() < deadline:
                if not await chat.ensure_connected(deadline):
                    break
                if sent_on is not chat.client:
                    metadata: Dict[str, Any] = {"resend": True} if sent_on is not None else {}
                    if sent_on is not None:
                        message.resends += 1
                    try:
                        await chat.client.emit("user_uttered", {"message": message.text, "message_id": message.id,
                                                                "metadata": metadata})
                    except Exception:  # noqa: BLE001 - lost in between: reconnect and resend
                        continue
                    sent_on = chat.client
                texts = chat.texts.get(message.id, [])
                if complete(texts) or _apology(texts):
                    break
                chat.changed.clear()
                try:
                    await asyncio.wait_for(chat.changed.wait(), max(0.1, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
            texts = chat.texts.get(message.id, [])
            if _apology(texts):
                message.apologies = 1
            elif complete(texts):
                message.replies = 1
                message.latency_ms = (time.perf_counter() - started) * 1000
            await asyncio.sleep(rng.uniform(*think))
    finally:
        await chat.close()
    for message in patient.messages:
        texts = chat.texts.get(message.id, [])
        endings = sum(1 for text in texts if complete([text]))
        if endings > 1 and not message.apologies:
            message.replies = endings  # the same message answered twice: counted as such


async def phone_patient(session: Any, door: PhoneDoor, patient: Patient, stop_at: float, rng: random.Random,
                        think: Tuple[float, float]) -> None:
    """A patient texting on a phone channel: each message a new delivery to the webhook; a
    delivery that gets no 200 is delivered again, as the platforms do (counted as failed)."""
    address = door.new_address(rng)
    patient.sender, patient.stored_as = address, door.conversation(address)
    while time.monotonic() < stop_at:
        delivery = door.new_delivery()
        message = Message(f"{door.kind}-{delivery}", rng.choice(QUESTIONS), first_reply=len(door.sent(address)))
        patient.messages.append(message)
        started = time.perf_counter()
        deadline = time.monotonic() + REPLY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                status, _ = await door.post(session, address, delivery, message.text)
            except (OSError, asyncio.TimeoutError):
                status = 0
            if status == 200:  # the webhook answers once its turn's replies are sent
                message.latency_ms = (time.perf_counter() - started) * 1000
                break
            message.failed += 1
            message.resends += 1
            await asyncio.sleep(0.5)
        await asyncio.sleep(rng.uniform(*think))
    # every message's replies: what was sent to the address from its delivery to the next one's
    sent = door.sent(address)
    bounds = [m.first_reply for m in patient.messages] + [len(sent)]
    for message, start, end in zip(patient.messages, bounds, bounds[1:]):
        texts = sent[start:end]
        message.apologies = int(_apology(texts))
        message.replies = sum(1 for text in texts if complete([text])) if not message.apologies else 0
        if not message.replies:
            message.latency_ms = None


@dataclass
class Fault:
    at_fraction: float  # of the run's duration
    name: str
    inject: Callable[[], None]
    done_after_s: Optional[float] = None


async def run_patients(*, balancer: str, origin: str, patients: int, seconds: float, rest_url: str,
                       rest_headers: Optional[Dict[str, str]] = None, webchat_share: float = 1 / 3,
                       phone_doors: Sequence[PhoneDoor] = (), phone_share: float = 1 / 3,
                       faults: Tuple[Fault, ...] = (), think: Tuple[float, float] = (1.0, 2.5),
                       seed: int = 7) -> List[Patient]:
    """``balancer``: the public side (web chat and the phone webhooks); ``rest_url``: the REST
    channel (the balancer's loopback-only REST port); ``phone_doors``: the phone channels whose
    patients take ``phone_share`` of them, in turn."""
    import aiohttp

    rng = random.Random(seed)
    started = time.monotonic()
    stop_at = started + seconds
    n_webchat = round(patients * webchat_share)
    n_phone = round(patients * phone_share) if phone_doors else 0
    doors = [phone_doors[i % len(phone_doors)] for i in range(n_phone)]
    group: List[Patient] = ([Patient("webchat") for _ in range(n_webchat)] + [Patient(door.kind) for door in doors]
                            + [Patient("rest") for _ in range(patients - n_webchat - n_phone)])
    door_of = dict(zip(range(n_webchat, n_webchat + n_phone), doors))
    timeout = aiohttp.ClientTimeout(total=REPLY_TIMEOUT)

    async def inject(fault: Fault) -> None:
        await asyncio.sleep(max(0.0, started + fault.at_fraction * seconds - time.monotonic()))
        await asyncio.get_running_loop().run_in_executor(None, fault.inject)
        fault.done_after_s = round(time.monotonic() - started, 1)

    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=patients)) as session:
        tasks = []
        for index, patient in enumerate(group):
            patient_rng = random.Random(rng.random())
            await asyncio.sleep(0.02)  # patients arrive over the first moment, not all at once
            if patient.kind == "rest":
                tasks.append(rest_patient(session, rest_url, patient, stop_at, patient_rng, think, rest_headers))
            elif index in door_of:
                tasks.append(phone_patient(session, door_of[index], patient, stop_at, patient_rng, think))
            else:
                tasks.append(webchat_patient(balancer, origin, patient, stop_at, patient_rng, think))
        tasks += [inject(fault) for fault in faults]
        await asyncio.gather(*tasks)
    return group


# ---- reading the conversations back -------------------------------------------------------------------

def conversation_events(database_url: str, sender: str) -> List[Dict[str, Any]]:
    import psycopg2

    connection = psycopg2.connect("postgresql://" + database_url.split("://", 1)[1], connect_timeout=10)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT data FROM events WHERE sender_id = %s ORDER BY id", (sender,))
            return [json.loads(row[0]) for row in cursor.fetchall()]
    finally:
        connection.close()


def conversation_problems(events: List[Dict[str, Any]]) -> List[str]:
    """What is wrong with a stored conversation: more than one session start, a message whose
    turn had not ended when the next began (turns overlapping), the same message stored twice,
    a message without a reply."""
    problems = []
    starts = sum(1 for e in events if e.get("event") == "action" and e.get("name") == "action_session_start")
    if starts != 1:
        problems.append(f"{starts} session starts")
    last_action, seen, replies_since_user, current = None, set(), 0, None
    for event in events:
        kind = event.get("event")
        if kind == "user":
            message_id = event.get("message_id")
            if last_action != "action_listen":
                problems.append(f"message {message_id} arrived before the previous turn ended")
            if message_id in seen:
                problems.append(f"message {message_id} stored twice")
            if current is not None and replies_since_user == 0:
                problems.append(f"message {current} has no reply")
            seen.add(message_id)
            current, replies_since_user, last_action = message_id, 0, None
        elif kind == "bot":
            replies_since_user += 1
        elif kind == "action":
            last_action = event.get("name")
    if current is not None and replies_since_user == 0:
        problems.append(f"message {current} has no reply")
    if current is not None and last_action != "action_listen":
        problems.append("the last turn never ended")
    return problems


def stored_id(patient: Patient) -> str:
    """The conversation id in the tracker store (REST conversations have their own namespace)."""
    from bot.channels.rest import conversation_id

    if patient.stored_as:
        return patient.stored_as
    return conversation_id(patient.sender) if patient.kind == "rest" else patient.sender


def stored_message_ids(events: List[Dict[str, Any]]) -> List[str]:
    return [e.get("message_id") for e in events if e.get("event") == "user"]


@dataclass
class Outcome:
    patients: int
    messages: int
    answered_once: int
    apologised: int
    unanswered: int
    answered_twice: int
    resends: int
    failed_requests: int  # REST requests and phone webhooks that got no 200 (the balancer's retries hide a killed instance)
    reconnects: int
    conversations_intact: int
    conversations: int
    problems: List[str]
    faults: List[Dict[str, Any]]
    p50_ms: Optional[float] = None
    p95_ms: Optional[float] = None

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def assess(group: List[Patient], database_url: str, faults: Tuple[Fault, ...] = ()) -> Outcome:
    """Count every message's replies and check every conversation in PostgreSQL."""
    messages = [m for p in group for m in p.messages]
    problems: List[str] = []
    intact = 0
    for patient in group:
        if not patient.sender:
            continue
        events = conversation_events(database_url, stored_id(patient))
        found = conversation_problems(events)
        stored = stored_message_ids(events)
        sent = [m.id for m in patient.messages]
        answered = [m.id for m in patient.messages if m.replies == 1]
        missing = [i for i in answered if i not in stored]
        if missing:
            found.append(f"{len(missing)} answered message(s) not stored")
        order = [i for i in stored if i in sent]
        if order != [i for i in sent if i in order]:
            found.append("messages stored out of order")
        strangers = [i for i in stored if i not in sent]
        if strangers:
            found.append(f"{len(strangers)} stored message(s) this patient never sent")
        if found:
            problems += [f"{patient.kind} {patient.sender[:18]}: {p}" for p in found]
        else:
            intact += 1
    for patient in group:
        for m in patient.messages:
            if m.replies != 1 or m.apologies:
                problems.append(f"{patient.kind} message {m.id}: {m.replies} complete replies, {m.apologies} apologies,"
                                f" {m.failed} failed requests, {m.resends} resends")
    latencies = [m.latency_ms for m in messages if m.latency_ms is not None]
    return Outcome(
        patients=len(group), messages=len(messages),
        answered_once=sum(1 for m in messages if m.replies == 1 and not m.apologies),
        apologised=sum(1 for m in messages if m.apologies and not m.replies),
        unanswered=sum(1 for m in messages if not m.replies and not m.apologies),
        answered_twice=sum(1 for m in messages if m.replies > 1 or (m.replies and m.apologies)),
        resends=sum(m.resends for m in messages), failed_requests=sum(m.failed for m in messages),
        reconnects=sum(p.reconnects for p in group),
        conversations_intact=intact, conversations=sum(1 for p in group if p.sender), problems=problems[:20],
        faults=[{"name": f.name, "at_s": f.done_after_s} for f in faults],
        p50_ms=percentile(latencies, 50), p95_ms=percentile(latencies, 95),
    )


def under_faults(cluster: Any, *, patients: int = 30, seconds: float = 30,
                 phone_doors: Sequence[PhoneDoor] = ()) -> Outcome:
    """The fault test of the cluster profile (tests and benchmark alike): ``patients`` patients
    (REST, web chat and, given their doors, the phone channels, through the balancer) for
    ``seconds``; Rasa instance 1 killed at 35% of the run and PostgreSQL restarted at 65%; then
    every message's replies are counted and every conversation is read back from PostgreSQL."""
    import os
    import signal

    def kill_instance() -> None:
        os.kill(cluster.pid("rasa-1"), signal.SIGKILL)

    def restart_postgres() -> None:
        cluster.supervisorctl("restart", "postgres")

    faults = (Fault(0.35, "Rasa instance 1 killed", kill_instance), Fault(0.65, "PostgreSQL restarted", restart_postgres))
    group = asyncio.run(run_patients(balancer=f"http://127.0.0.1:{cluster.rasa_port}",
                                     origin=cluster.web_url.rstrip("/"), patients=patients, seconds=seconds,
                                     rest_url=cluster.rest_url, rest_headers=cluster.rest_headers,
                                     phone_doors=phone_doors, webchat_share=0.25 if phone_doors else 1 / 3,
                                     phone_share=0.25 if phone_doors else 0, faults=faults))
    return assess(group, cluster.database_url, faults)
