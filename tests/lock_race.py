"""One side of a lock race (run as a process by tests/test_cluster.py): for each round, wait at
a Redis barrier for the other process, then take Rasa's conversation lock for that round's
conversation and record entering and leaving it, as a Rasa instance does around a turn.

    python -m tests.lock_race REDIS_URL STORE PREFIX ROUNDS WORKER
    python -m tests.lock_race REDIS_URL atomic CONVERSATION hold -   (take the lock, say so, keep it)

STORE: ``atomic`` (bot.rasa.stores.AtomicRedisLockStore) or ``stock`` (Rasa's RedisLockStore).
"""
from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlparse


def make_store(url: str, kind: str):
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import EndpointConfig

    if kind == "atomic":
        return LockStore.create(EndpointConfig(url=url, type="bot.rasa.stores.AtomicRedisLockStore"))
    parts = urlparse(url)
    return LockStore.create(EndpointConfig(url=parts.hostname, type="redis", port=parts.port, db=1,
                                           password=parts.password))


async def race(url: str, kind: str, prefix: str, rounds: int, worker: str) -> None:
    import redis

    from rasa.core.lock_store import LockError

    store = make_store(url, kind)
    red = redis.Redis.from_url(url)
    for number in range(rounds):
        conversation = f"{prefix}-{number}"
        log = f"{prefix}:log:{number}"
        barrier = f"{prefix}:barrier:{number}"
        red.incr(barrier)
        while int(red.get(barrier) or 0) < 2:  # both sides start the round together
            pass
        try:
            async with store.lock(conversation, wait_time_in_seconds=0.01):
                red.rpush(log, f"enter:{worker}")
                await asyncio.sleep(0.005)  # a turn's work
                red.rpush(log, f"leave:{worker}")
        except LockError:
            red.rpush(log, f"lockerror:{worker}")


async def hold(url: str, kind: str, conversation: str) -> None:
    store = make_store(url, kind)
    async with store.lock(conversation):
        print("held", flush=True)
        await asyncio.sleep(3600)  # until killed, as an instance killed mid-turn


if __name__ == "__main__":
    redis_url, store_kind, key_prefix, count, name = sys.argv[1:6]
    if count == "hold":
        asyncio.run(hold(redis_url, store_kind, key_prefix))
    else:
        asyncio.run(race(redis_url, store_kind, key_prefix, int(count), name))
