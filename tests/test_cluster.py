"""The cluster profile (`python -m bot serve --cluster`): real PostgreSQL, Redis and haproxy from
Debian's packages and two real Rasa instances, each with its own action server, started by the
project's own launcher in a temporary data folder on free ports (tests/conftest.py).

Continuity across instances, web chat through the balancer, shared state, the lock race (with
Rasa's own lock store the race test fails), resilience to a database restart, Redis down and a
killed instance, and patients under faults."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from typing import Any, Dict, List, Tuple

import pytest

from bot.ops.settings import PROJECT_ROOT
from bot.evaluation.cluster_load import conversation_events, conversation_problems, under_faults
from bot.channels.messaging import plain_text
from bot.answers.wording import response_text
from bot.channels.rest import conversation_id
from tests.clients import REST_TOKEN, WebChat, bodies, run_async, sms, twilio_post, wait_for_reply
from tests.conftest import start_cluster_for_tests, wait_until

pytestmark = pytest.mark.servers

APOLOGY = response_text("utter_technical_problem")[:40]


def post_json(base: str, body: Dict[str, Any], timeout: float = 60) -> Tuple[int, Dict[str, str], Any]:
    """A REST request with the token the test clusters are started with (REST_TOKEN)."""
    request = urllib.request.Request(f"{base}/webhooks/rest/webhook", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {REST_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def balancer(cluster) -> str:
    """The balancer's public side: web chat and the phone webhooks only."""
    return f"http://127.0.0.1:{cluster.rasa_port}"


def rest_door(cluster) -> str:
    """The balancer's loopback-only REST port."""
    return f"http://127.0.0.1:{cluster.rest_port}"


def instance_url(cluster, number: int) -> str:
    return f"http://127.0.0.1:{cluster.instance_ports[number - 1]}"


def joined(messages: List[Dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


def new_sender(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def ask(base: str, sender: str, text: str, **extra: Any) -> Tuple[int, Dict[str, str], Any]:
    return post_json(base, {"sender": sender, "message": text, **extra})


def served_by(headers: Dict[str, str]) -> str:
    return {k.lower(): v for k, v in headers.items()}.get("x-served-by", "")


# ---- the cluster runs ----------------------------------------------------------------------------------------

def test_health_names_every_service_of_the_cluster(running_cluster):
    health = running_cluster.health()
    assert health == {"status": "ok", "services": {
        "balancer": "ok", "rasa-1": "ok", "actions-1": "ok", "rasa-2": "ok", "actions-2": "ok",
        "postgres": "ok", "redis": "ok"}}


def test_secrets_stay_out_of_configuration_files(running_cluster):
    run = running_cluster.data_dir / "run"
    secrets = [running_cluster.secret(name) for name in ("postgres-clinic", "postgres-admin", "redis")]
    for path in run.glob("*"):
        if path.is_file() and path.suffix in (".yml", ".conf", ".cfg"):
            text = path.read_text(encoding="utf-8")
            assert not any(secret in text for secret in secrets), f"a password is written in {path.name}"
    assert (running_cluster.data_dir / "cluster" / "postgres").stat().st_mode & 0o077 == 0


def raw_request(base: str, path: str, *, method: str = "GET", body: bytes = None, headers=None) -> Tuple[int, str]:
    request = urllib.request.Request(f"{base}{path}", data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_the_public_side_refuses_rest_and_hides_the_banner_and_rest_needs_its_token(running_cluster):
    """The balancer's public port passes only what patients' clients need; REST has its own
    loopback-only port, and these instances (REST_TOKEN set) want the token even there."""
    public, door = balancer(running_cluster), rest_door(running_cluster)
    body = json.dumps({"sender": new_sender("outsider"), "message": "how long does the drip last?"}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {REST_TOKEN}"}
    status, text = raw_request(public, "/webhooks/rest/webhook", method="POST", body=body, headers=headers)
    assert status == 404 and "Source:" not in text  # even with the token: not on the public side
    for path in ("/", "/webhooks/rest/", "/version", "/status"):
        status, text = raw_request(public, path)
        assert status == 404 and "Rasa" not in text and "3.6" not in text, (path, status, text)
    # the phone webhooks do pass (Rasa's Telegram channel answers: no secret, 403)
    assert raw_request(public, "/webhooks/telegram/webhook", method="POST", body=b"{}",
                       headers={"Content-Type": "application/json"})[0] == 403
    # the REST port: only REST, and only with the token
    assert raw_request(door, "/")[0] == 404
    for wrong in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": REST_TOKEN}):
        status, text = raw_request(door, "/webhooks/rest/webhook", method="POST", body=body,
                                   headers={"Content-Type": "application/json", **wrong})
        assert status == 401 and "token" in json.loads(text)["error"], wrong
    status, text = raw_request(door, "/webhooks/rest/webhook", method="POST", body=body, headers=headers)
    assert status == 200 and "40 minutes to an hour" in text


# ---- continuity across instances ------------------------------------------------------------------------------

def test_a_follow_up_lands_on_another_instance_and_keeps_its_context(running_cluster):
    sender = new_sender("continuity")
    status, first_headers, first = ask(rest_door(running_cluster), sender, "how long does the drip last?")
    assert status == 200 and "40 minutes to an hour" in joined(first)
    for _ in range(4):  # round robin: the next message or the one after goes to the other instance
        status, follow_headers, follow = ask(rest_door(running_cluster), sender, "and IM?")
        assert status == 200 and "30 to 45 minutes" in joined(follow) and "40 minutes" not in joined(follow)
        if served_by(follow_headers) != served_by(first_headers):
            break
    assert {served_by(first_headers), served_by(follow_headers)} == {"rasa-1", "rasa-2"}


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_web_chat_session_persists_through_the_balancer_on_either_instance(running_cluster, transport):
    async def conversation():
        first = await WebChat(running_cluster).connect(transports=(transport,))
        try:
            answer = await first.ask("how long does the drip last?")
            cookies = {c.key: c.value for c in first._http.cookie_jar}
        finally:
            await first.close()
        assert any("40 minutes to an hour" in t for t in answer)
        assert cookies.get("CLINIC_INSTANCE") in ("rasa-1", "rasa-2")  # the balancer's stickiness cookie
        other = "rasa-2" if cookies["CLINIC_INSTANCE"] == "rasa-1" else "rasa-1"
        # the same session, resumed with its token, on the other instance
        second = await WebChat(running_cluster).connect(first.session["session_id"], first.session["token"],
                                                         transports=(transport,), cookies={"CLINIC_INSTANCE": other})
        try:
            follow = await second.ask("and IM?")
            still = {c.key: c.value for c in second._http.cookie_jar}.get("CLINIC_INSTANCE")
        finally:
            await second.close()
        return second.session["session_id"] == first.session["session_id"], follow, still, other

    same_session, follow, still, other = run_async(conversation())
    assert same_session
    assert still == other
    assert any("30 to 45 minutes" in t for t in follow)


# ---- state shared by the instances ------------------------------------------------------------------------------

def test_rate_limits_count_across_instances(running_cluster):
    sender = new_sender("flood")
    statuses, servers = [], set()
    for _ in range(20):
        status, headers, _ = ask(rest_door(running_cluster), sender, "hi")
        statuses.append(status)
        servers.add(served_by(headers))
    assert servers == {"rasa-1", "rasa-2"}
    # 20 messages spread over two instances: 10 each, under each instance's own burst of 12 -
    # only a shared count refuses some
    assert 429 in statuses
    assert statuses.count(200) <= 12 + 3


def test_sms_option_numbers_work_on_any_instance(running_cluster, twilio_api):
    sender = f"+1555{uuid.uuid4().int % 10**7:07d}"
    first = instance_view(running_cluster, 1)
    second = instance_view(running_cluster, 2)
    status, _ = twilio_post(first, sms("hi", sender))
    assert status == 200
    greeting = wait_for_reply(lambda: bodies(twilio_api.recorded(To=sender)), first=True)
    options = [line for text in greeting for line in text.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")]
    assert len(options) >= 2, greeting
    start = len(twilio_api.recorded(To=sender))
    status, _ = twilio_post(second, sms("2", sender))  # the reply reaches the other instance
    assert status == 200
    chosen = wait_for_reply(lambda: bodies(twilio_api.recorded(To=sender))[start:])
    # the same reply as pressing that option's button
    title = options[1].split(".", 1)[1].strip()
    payload = next(b["payload"] for b in greeting_buttons() if b["title"] == title)
    status, _, pressed = ask(rest_door(running_cluster), new_sender("button"), payload, metadata={"button": True})
    assert status == 200
    answer = next(plain_text(m["text"]) for m in pressed if "Source:" in m.get("text", ""))
    assert answer in "\n".join(chosen)


def greeting_buttons() -> List[Dict[str, str]]:
    import yaml

    from bot.ops.settings import PROJECT_ROOT

    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return [b for variant in domain["responses"]["utter_greet"] for b in variant.get("buttons") or []]


def instance_view(cluster, number: int):
    return cluster.instance(number)


def test_a_telegram_update_redelivered_to_another_instance_is_answered_once(running_cluster, telegram_api):
    from tests.clients import send_update, sent_texts, text_update

    chat_id = uuid.uuid4().int % 10**9
    update = text_update("is the shot painful?", chat_id)
    status, body = send_update(instance_view(running_cluster, 1), update)
    assert status == 200 and json.loads(body)["status"] == "ok"
    wait_for_reply(lambda: sent_texts(telegram_api.recorded(chat_id=chat_id)), first=True)
    status, body = send_update(instance_view(running_cluster, 2), update)  # Telegram's redelivery
    assert status == 200 and json.loads(body)["status"] == "duplicate"


# ---- the lock race ----------------------------------------------------------------------------------------------

def race_conversations(cluster, rounds: int) -> List[str]:
    """Each round: one conversation, two messages sent at the same moment, one to each instance."""
    problems: List[str] = []
    for number in range(rounds):
        sender = new_sender(f"race{number}")
        barrier = threading.Barrier(2)
        results: Dict[int, Any] = {}

        def send(which: int, text: str) -> None:
            barrier.wait()
            results[which] = ask(instance_url(cluster, which), sender, text, message_id=uuid.uuid4().hex)

        threads = [threading.Thread(target=send, args=(1, "which is faster, IV or IM?")),
                   threading.Thread(target=send, args=(2, "is the shot painful?"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        for which, (status, _, body) in sorted(results.items()):
            if status != 200 or "not medical advice" not in joined(body):
                problems.append(f"round {number}: instance {which} answered {status}")
        events = conversation_events(cluster.database_url, conversation_id(sender))
        problems += [f"round {number}: {p}" for p in conversation_problems(events)]
    for number in (1, 2):
        log = cluster.service_log(f"rasa-{number}").read_text(errors="replace")
        if "LockError" in log:
            problems.append(f"rasa-{number} logged a LockError")
    return problems


@pytest.fixture(scope="module")
def stock_lock_cluster(trained_model):
    """A second cluster whose instances use Rasa's own RedisLockStore (CLUSTER_LOCK_STORE=rasa)."""
    with start_cluster_for_tests({"CLUSTER_LOCK_STORE": "rasa"}) as cluster:
        yield cluster


@pytest.mark.parametrize("store", [
    "atomic",
    # Not strict: through HTTP and two instances the race depends on timing, and a run of 25 rounds
    # on a busy machine sometimes misses it (the process-level test below always shows it).
    pytest.param("rasa", marks=pytest.mark.xfail(strict=False, reason="Rasa's RedisLockStore is not atomic: "
                                                                       "both instances run the turn at once")),
])
def test_two_messages_of_one_conversation_at_two_instances_at_once(request, store):
    cluster = request.getfixturevalue("running_cluster" if store == "atomic" else "stock_lock_cluster")
    problems = race_conversations(cluster, rounds=25)
    assert not problems, problems[:10]


@pytest.mark.parametrize("store", [
    "atomic",
    pytest.param("stock", marks=pytest.mark.xfail(strict=True, reason="Rasa's RedisLockStore: GET-modify-SET")),
])
def test_the_lock_store_race_between_two_processes(running_cluster, store):
    """Two processes take Rasa's conversation lock for the same conversations at the same moment,
    200 rounds: no round may see both inside at once, or a LockError."""
    import redis

    prefix = f"race-{store}-{uuid.uuid4().hex[:8]}"
    rounds = 200
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONWARNINGS": "ignore"}
    processes = [subprocess.Popen([sys.executable, "-m", "tests.lock_race", running_cluster.redis_url, store, prefix,
                                   str(rounds), worker], cwd=PROJECT_ROOT, env=env, stderr=subprocess.PIPE)
                 for worker in ("a", "b")]
    for process in processes:
        _, error = process.communicate(timeout=240)
        assert process.returncode == 0, error.decode()[-2000:]
    red = redis.Redis.from_url(running_cluster.redis_url)
    overlapping, lock_errors = 0, 0
    for number in range(rounds):
        log = [entry.decode() for entry in red.lrange(f"{prefix}:log:{number}", 0, -1)]
        lock_errors += sum(entry.startswith("lockerror") for entry in log)
        pairs = [log[i:i + 2] for i in range(0, len(log), 2)]
        if len(log) != 4 or any(p[0].split(":")[0] != "enter" or p[1] != f"leave:{p[0].split(':')[1]}" for p in pairs):
            overlapping += 1
    assert (overlapping, lock_errors) == (0, 0)


def test_a_lock_held_by_a_killed_process_is_released_within_seconds(running_cluster):
    """An instance killed mid-turn leaves its ticket in Redis; the next turn of that conversation
    must not wait out the lock's 60-second lifetime."""
    from bot.rasa.stores import AtomicRedisLockStore

    conversation = f"held-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONWARNINGS": "ignore"}
    holder = subprocess.Popen([sys.executable, "-m", "tests.lock_race", running_cluster.redis_url, "atomic",
                               conversation, "hold", "-"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        store = AtomicRedisLockStore(url=running_cluster.redis_url)
        assert store.get_lock(conversation).is_someone_waiting()
        holder.kill()
        holder.wait()

        async def next_turn() -> bool:
            async with store.lock(conversation):
                return True

        # well before the lock's lifetime (60 s) has passed
        assert run_async(asyncio.wait_for(next_turn(), timeout=20))
    finally:
        holder.kill()


# ---- resilience --------------------------------------------------------------------------------------------------

def test_a_database_restart_loses_no_context(healthy_cluster):
    cluster = healthy_cluster
    sender = new_sender("db-restart")
    status, _, first = ask(rest_door(cluster), sender, "how long does the drip last?")
    assert status == 200 and "40 minutes to an hour" in joined(first)
    # 1. restarted between two turns: the pooled connections are stale; the next turn does not notice
    cluster.supervisorctl("restart", "postgres")
    status, _, follow = ask(rest_door(cluster), sender, "and IM?")
    assert status == 200 and "30 to 45 minutes" in joined(follow)
    # 2. down while a turn waits: the turn waits for it (never a conversation started afresh)
    logs = [cluster.service_log(f"rasa-{n}") for n in (1, 2)]
    before = sum(log.read_text(errors="replace").count("tracker store: could not") for log in logs)
    cluster.supervisorctl("stop", "postgres")
    result: Dict[str, Any] = {}
    waiting = threading.Thread(target=lambda: result.update(reply=ask(rest_door(cluster), sender, "and IV?")))
    waiting.start()
    wait_until(lambda: sum(log.read_text(errors="replace").count("tracker store: could not") for log in logs) > before,
               timeout=30, what="the turn to find the database down and wait")
    cluster.supervisorctl("start", "postgres")
    waiting.join(60)
    status, _, again = result["reply"]
    assert status == 200 and "40 minutes to an hour" in joined(again)
    assert conversation_problems(conversation_events(cluster.database_url, conversation_id(sender))) == []


def test_redis_down_gets_a_polite_reply_never_a_lost_context(healthy_cluster, telegram_api):
    from tests.clients import send_update, sent_texts, text_update

    cluster = healthy_cluster
    sender = new_sender("redis-down")
    status, _, first = ask(rest_door(cluster), sender, "how long does the drip last?")
    assert status == 200
    cluster.supervisorctl("stop", "redis")
    wait_until(lambda: cluster.health()["services"]["redis"] == "down", timeout=30, what="/health to report Redis down")
    # REST: a clear error, and the apology a patient would get
    status, _, body = ask(rest_door(cluster), sender, "and IM?")
    assert status == 503 and body["error"]
    apology = joined(body["messages"])
    assert APOLOGY in apology and "911" in apology and "not medical advice" in apology

    # web chat: the apology, to this socket directly
    async def web_chat():
        chat = await WebChat(cluster).connect()
        try:
            return await chat.ask("and IM?")
        finally:
            await chat.close()

    assert any(APOLOGY in t for t in run_async(web_chat()))
    # Telegram: the apology too
    chat_id = uuid.uuid4().int % 10**9
    assert send_update(cluster, text_update("is the shot painful?", chat_id))[0] == 200
    assert any(APOLOGY in t for t in wait_for_reply(lambda: sent_texts(telegram_api.recorded(chat_id=chat_id))))

    cluster.supervisorctl("start", "redis")
    wait_until(lambda: cluster.health()["status"] == "ok", timeout=60, what="the cluster to be healthy again")
    status, _, follow = ask(rest_door(cluster), sender, "and IM?")
    assert status == 200 and "30 to 45 minutes" in joined(follow)  # the context was kept
    assert conversation_problems(conversation_events(cluster.database_url, conversation_id(sender))) == []


def test_a_killed_instance_is_routed_around_and_web_chat_resumes_elsewhere(healthy_cluster):
    cluster = healthy_cluster

    async def scenario():
        chat = await WebChat(cluster).connect(cookies={"CLINIC_INSTANCE": "rasa-2"})
        disconnected = asyncio.Event()
        chat.client.on("disconnect", lambda: disconnected.set())
        first = await chat.ask("how long does the drip last?")
        session = dict(chat.session)
        os.kill(cluster.pid("rasa-2"), signal.SIGKILL)
        await asyncio.wait_for(disconnected.wait(), 30)
        await chat.close()
        # Once the balancer has seen the instance go (its health checks, about two seconds), REST
        # goes on on the other one. (In the moment before that a request can still get a 502 from
        # haproxy - seen once in CI; README, known limitations.)
        wait_until(lambda: cluster.health()["services"]["balancer"] == "down", timeout=30,
                   what="the balancer to mark the killed instance down")
        statuses = [ask(rest_door(cluster), new_sender("after-kill"), "is the shot painful?")[0] for _ in range(6)]
        # the browser reconnects with its session; its cookie names the dead instance
        again = await WebChat(cluster).connect(session["session_id"], session["token"],
                                               cookies={"CLINIC_INSTANCE": "rasa-2"})
        try:
            follow = await again.ask("and IM?")
        finally:
            await again.close()
        return first, statuses, again.session["session_id"] == session["session_id"], follow

    first, statuses, same, follow = run_async(scenario())
    assert any("40 minutes to an hour" in t for t in first)
    assert statuses == [200] * 6
    assert same and any("30 to 45 minutes" in t for t in follow)


@pytest.mark.parametrize("channel", ["rest", "telegram", "twilio"])
def test_a_turn_in_flight_on_a_killed_instance_is_answered_by_the_other_once(healthy_cluster, telegram_api,
                                                                              twilio_api, channel):
    """Instance 1 holds a turn (its action server is paused, so the turn waits for it) when it is
    killed: the balancer sends the request again to instance 2, which answers it - one 200, one
    reply, the message stored once in PostgreSQL."""
    from concurrent.futures import ThreadPoolExecutor

    from bot.rasa.stores import AtomicRedisLockStore
    from tests.clients import REPLY_ENDS, phone_doors

    cluster = healthy_cluster
    store = AtomicRedisLockStore(url=cluster.redis_url)
    door = {d.kind: d for d in phone_doors(f"http://127.0.0.1:{cluster.rasa_port}", telegram_api, twilio_api)}.get(channel)
    rasa_1 = cluster.pid("rasa-1")

    def send(sender: str, delivery: str, text: str) -> Tuple[int, str, List[str]]:
        """(status, the instance that answered, the reply's texts)"""
        if door is None:
            status, headers, reply = ask(rest_door(cluster), sender, text, message_id=delivery)
            return status, served_by(headers), [m.get("text", "") for m in reply] if status == 200 else []

        async def post() -> Tuple[int, str]:
            import aiohttp

            async with aiohttp.ClientSession() as session:
                return await door.post(session, sender, delivery, text)

        status, server = run_async(post())
        return status, server, door.sent(sender)

    os.kill(cluster.pid("actions-1"), signal.SIGSTOP)  # instance 1's turns now wait for their action server
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for attempt in range(4):  # round robin: the first or the second new conversation lands on instance 1
                sender, delivery = new_sender("in-flight"), uuid.uuid4().hex[:16]
                if door is not None:
                    sender, delivery = door.new_address(None), door.new_delivery()
                stored = conversation_id(sender) if door is None else door.conversation(sender)
                pending = pool.submit(send, sender, delivery, "how long does the drip last?")
                held = wait_until(lambda: pending.done() or any(f":{rasa_1}:" in h for h in store.holders(stored)),
                                  timeout=30, what="the turn to be answered or held by instance 1")
                if not pending.done() and held:
                    break
            else:
                pytest.fail("no turn landed on instance 1")
            os.kill(rasa_1, signal.SIGKILL)
            status, server, texts = pending.result(timeout=90)
    finally:
        os.kill(cluster.pid("actions-1"), signal.SIGCONT)
    assert status == 200 and server == "rasa-2"
    assert sum(1 for text in texts if any(end in text for end in REPLY_ENDS)) == 1 and any("40 minutes to an hour" in t for t in texts), texts
    events = conversation_events(cluster.database_url, stored)
    message_id = delivery if door is None else f"{channel}-{delivery}"
    assert [e.get("message_id") for e in events if e.get("event") == "user"] == [message_id]
    assert conversation_problems(events) == []


def test_patients_under_faults_each_get_exactly_one_reply(healthy_cluster, telegram_api, twilio_api):
    """32 patients (REST, web chat, Telegram and SMS) for 30 s; one Rasa instance killed in the
    middle and PostgreSQL restarted once: no REST request or phone webhook fails (the balancer
    sends one in flight on the killed instance again, to the other), every message gets exactly
    one reply - as the client saw it, and as PostgreSQL stored it - and every conversation is
    intact in PostgreSQL."""
    from tests.clients import phone_doors

    doors = phone_doors(f"http://127.0.0.1:{healthy_cluster.rasa_port}", telegram_api, twilio_api)
    outcome = under_faults(healthy_cluster, patients=32, seconds=30, phone_doors=doors)
    print(json.dumps(outcome.as_dict(), indent=1))
    assert outcome.messages >= 200
    assert outcome.failed_requests == 0, outcome.as_dict()
    assert outcome.answered_once == outcome.messages, outcome.as_dict()
    assert outcome.conversations_intact == outcome.conversations == 32, outcome.problems


# ---- the staff side in the cluster: records in PostgreSQL, the purge inside the Redis lock -------------------

def purge_in_cluster(cluster, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DATA_DIR": str(cluster.data_dir),
           "ASSISTANT_PROFILE": "cluster", "DATABASE_URL": cluster.database_url, "REDIS_URL": cluster.redis_url}
    return subprocess.run([sys.executable, "-m", "bot", "purge", *args], capture_output=True, text=True, env=env,
                          cwd=PROJECT_ROOT, timeout=300)


def test_the_purge_command_waits_for_a_conversations_lock_then_deletes_it(running_cluster):
    """A conversation back-dated past the retention period, whose lock is held (as during a turn
    on another instance): `bot purge` leaves it alone; once the lock is free it deletes the
    conversation from PostgreSQL and its records."""
    import psycopg2

    from bot.ops.settings import Settings
    from bot.staff.records import conversation_key
    from bot.rasa.stores import AtomicRedisLockStore

    client = new_sender("purge")
    status, _, reply = ask(rest_door(running_cluster), client, "how long does the IM shot last?")
    assert status == 200 and "Source:" in joined(reply)
    sender = conversation_id(client)
    key = conversation_key(sender, settings=Settings(data_dir=running_cluster.data_dir))
    database = psycopg2.connect(running_cluster.database_url)
    database.autocommit = True

    def count(query: str, value: str) -> int:
        with database.cursor() as cursor:
            cursor.execute(query, (value,))
            return cursor.fetchone()[0]

    events = "SELECT count(*) FROM events WHERE sender_id = %s"
    records = "SELECT count(*) FROM turn_records WHERE conversation = %s"
    try:
        assert count(records, key) == 1  # the record is in the cluster's PostgreSQL
        with database.cursor() as cursor:
            cursor.execute("UPDATE events SET timestamp = timestamp - 40 * 86400 WHERE sender_id = %s", (sender,))
            cursor.execute("UPDATE turn_records SET at = at - interval '40 days' WHERE conversation = %s", (key,))
        locks = AtomicRedisLockStore(url=running_cluster.redis_url)
        ticket = locks.issue_ticket(sender)  # held, as by a turn in flight
        try:
            busy = purge_in_cluster(running_cluster)
            assert busy.returncode == 3 and f"conversation {key} is busy" in busy.stdout, busy.stdout + busy.stderr
            assert count(events, sender) > 0
        finally:
            locks.finish_serving(sender, ticket)
        dry = purge_in_cluster(running_cluster, "--dry-run")
        assert f"would delete conversation {key}" in dry.stdout and count(events, sender) > 0
        done = purge_in_cluster(running_cluster)
        assert done.returncode == 0 and f"deleted conversation {key}" in done.stdout, done.stdout + done.stderr
        assert count(events, sender) == 0 and count(records, key) == 0
        assert sender not in (running_cluster.data_dir / "log" / "purge.log").read_text()
    finally:
        database.close()
