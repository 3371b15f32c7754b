"""State the channels keep between messages: rate-limit buckets, delivery ids already handled,
numbered options offered on SMS, and (web chat) which socket is in which room.

The embedded profile (one Rasa process) keeps it in this process. The cluster profile (several
Rasa instances behind a balancer, REDIS_URL set) keeps it in Redis, so any instance can answer
any message: a Twilio reply "2" reaching another instance than the one that offered the
options, a Telegram update redelivered to another instance, a flood spread over instances,
a reply emitted by one instance to a browser connected to another.

When Redis cannot be reached, what only protects or helps (rate limits, de-duplication of
redelivered updates, the numbers of offered options) fails open with a logged error, so a
patient is not refused because of it; the conversation lock (bot/rasa/stores.py) fails closed, and
the patient gets the apology (bot/channels/guard.py).
"""
from __future__ import annotations

import functools
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, List, Optional, Tuple

from bot.ops.settings import Settings

logger = logging.getLogger(__name__)

SEEN_TTL_SECONDS = 2 * 24 * 3600  # Telegram and Twilio stop retrying long before this
OPTIONS_TTL_SECONDS = 24 * 3600


@lru_cache(maxsize=4)
def _redis(url: str) -> Any:
    from bot.rasa.stores import redis_client

    return redis_client(url)


def _fail_open(default: Callable[..., Any]) -> Callable:
    """On a Redis error: log it and return ``default(*args)`` instead of raising."""
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def call(self, *args: Any, **kwargs: Any) -> Any:
            import redis

            try:
                return method(self, *args, **kwargs)
            except redis.RedisError as error:
                logger.error("shared state: Redis unavailable (%s) in %s; carrying on without it",
                             type(error).__name__, method.__qualname__)
                return default(*args, **kwargs)

        return call

    return decorate


# ---- rate-limit buckets -------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    allowed: bool
    first_refusal: bool = False  # the first refused message since the last allowed one


class MemoryBuckets:
    """Token buckets in this process (bounded: the least recently used keys are forgotten)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._state: "OrderedDict[str, Tuple[float, float, bool]]" = OrderedDict()

    def take(self, key: str, *, rate_per_minute: float, burst: int) -> Decision:
        now = self._clock()
        tokens, updated, refused = self._state.get(key, (float(burst), now, False))
        tokens = min(float(burst), tokens + (now - updated) * rate_per_minute / 60.0)
        if tokens >= 1.0:
            self._state[key] = (tokens - 1.0, now, False)
            decision = Decision(True)
        else:
            self._state[key] = (tokens, now, True)
            decision = Decision(False, first_refusal=not refused)
        self._state.move_to_end(key)
        while len(self._state) > self._max_keys:
            self._state.popitem(last=False)
        return decision


def _allowed(*args: Any, **kwargs: Any) -> Decision:
    return Decision(True)


# A token bucket in one atomic step: refill for the time passed, take a token if there is one,
# remember whether this is the first refusal in a row. KEYS[1]; ARGV: now, rate/s, burst, ttl.
_TAKE = """
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'refused')
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
local refused = state[3] == '1'
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed, first = 0, 0
if tokens >= 1 then
  tokens = tokens - 1; allowed = 1; refused = false
else
  if not refused then first = 1 end
  refused = true
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now, 'refused', refused and '1' or '0')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {allowed, first}
"""


class RedisBuckets:
    """Token buckets shared by every instance (one Lua script per decision: atomic)."""

    def __init__(self, url: str, prefix: str = "clinic:rate:") -> None:
        self._redis = _redis(url)
        self._prefix = prefix
        self._take = self._redis.register_script(_TAKE)

    @_fail_open(_allowed)
    def take(self, key: str, *, rate_per_minute: float, burst: int):
        ttl = max(60, int(burst / max(rate_per_minute / 60.0, 1e-6)) + 60)
        allowed, first = self._take(keys=[self._prefix + key],
                                    args=[time.time(), rate_per_minute / 60.0, burst, ttl])
        return Decision(bool(allowed), bool(first))


def bucket_store(settings: Settings):
    if settings.redis_url:
        return RedisBuckets(settings.redis_url)
    return MemoryBuckets()


# ---- delivery ids already handled ------------------------------------------------------------------

class MemorySeenIds:
    """A bounded memory of delivery ids (update_id, MessageSid) already handled."""

    def __init__(self, limit: int = 10_000) -> None:
        self._seen: "OrderedDict[str, None]" = OrderedDict()
        self._sent: "OrderedDict[str, int]" = OrderedDict()  # replies of a delivery sent so far
        self._limit = limit

    def seen(self, delivery_id: Any) -> bool:
        return str(delivery_id) in self._seen

    def sent_count(self, delivery_id: Any) -> int:
        return self._sent.get(str(delivery_id), 0)

    def count_sent(self, delivery_id: Any, count: int) -> None:
        self._sent[str(delivery_id)] = count
        self._sent.move_to_end(str(delivery_id))
        if len(self._sent) > self._limit:
            self._sent.popitem(last=False)

    def first_time(self, delivery_id: Any) -> bool:
        key = str(delivery_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        return True


class RedisSeenIds:
    """Delivery ids in Redis: SET NX marks an id and tells whether it was new, atomically."""

    def __init__(self, url: str, channel: str) -> None:
        self._redis = _redis(url)
        self._prefix = f"clinic:seen:{channel}:"

    @_fail_open(lambda *args: True)
    def first_time(self, delivery_id: Any) -> bool:
        return bool(self._redis.set(self._prefix + str(delivery_id), "1", nx=True, ex=SEEN_TTL_SECONDS))

    @_fail_open(lambda *args: False)
    def seen(self, delivery_id: Any) -> bool:
        return bool(self._redis.exists(self._prefix + str(delivery_id)))

    @_fail_open(lambda *args: 0)
    def sent_count(self, delivery_id: Any) -> int:
        return int(self._redis.get(self._prefix + "sent:" + str(delivery_id)) or 0)

    @_fail_open(lambda *args: None)
    def count_sent(self, delivery_id: Any, count: int) -> None:
        self._redis.set(self._prefix + "sent:" + str(delivery_id), count, ex=SEEN_TTL_SECONDS)


def seen_ids(settings: Settings, channel: str):
    return RedisSeenIds(settings.redis_url, channel) if settings.redis_url else MemorySeenIds()


# ---- numbered options offered on SMS ------------------------------------------------------------------

class MemoryOptions:
    """The numbered options last offered in each conversation (bounded, in memory)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._offered: "OrderedDict[str, List[str]]" = OrderedDict()
        self._limit = limit

    def offer(self, conversation: str, payloads: List[str]) -> None:
        self._offered[conversation] = payloads
        self._offered.move_to_end(conversation)
        if len(self._offered) > self._limit:
            self._offered.popitem(last=False)

    def offered(self, conversation: str) -> Optional[List[str]]:
        return self._offered.get(conversation)

    def clear(self, conversation: str) -> None:
        self._offered.pop(conversation, None)


class RedisOptions:
    def __init__(self, url: str) -> None:
        self._redis = _redis(url)
        self._prefix = "clinic:options:"

    @_fail_open(lambda *args: None)
    def offer(self, conversation: str, payloads: List[str]) -> None:
        self._redis.set(self._prefix + conversation, json.dumps(payloads), ex=OPTIONS_TTL_SECONDS)

    @_fail_open(lambda *args: None)
    def offered(self, conversation: str) -> Optional[List[str]]:
        raw = self._redis.get(self._prefix + conversation)
        return json.loads(raw) if raw else None

    @_fail_open(lambda *args: None)
    def clear(self, conversation: str) -> None:
        self._redis.delete(self._prefix + conversation)


def offered_options(settings: Settings):
    return RedisOptions(settings.redis_url) if settings.redis_url else MemoryOptions()


# ---- web chat rooms ---------------------------------------------------------------------------------

def socketio_manager(settings: Settings):
    """Where socket.io keeps its rooms: this process (None: python-socketio's default), or
    Redis, so a reply emitted by one instance reaches a browser connected to another."""
    if not settings.redis_url:
        return None
    from socketio import AsyncRedisManager

    return AsyncRedisManager(settings.redis_url, channel="clinic-webchat")
