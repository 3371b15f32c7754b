"""Rate limits for every channel: token buckets per sender and per client address.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_minute``; each message takes
one. A patient typing (a message every few seconds, a quick burst of button presses) never
empties it; a script sending hundreds of messages does, and is refused until it slows down.
The first refusal in a row is reported (so a channel can say "please slow down" once, not
once per message - an SMS reply costs money); later ones are silent.

The buckets live in this process by default; the cluster profile keeps them in Redis so
every instance sees the same counts (bot/shared.py).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional, Tuple

from bot.settings import Settings, get_settings


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


class RateLimits:
    """The limits of the settings, over one bucket store."""

    def __init__(self, settings: Settings, store=None) -> None:
        self.settings = settings
        self.store = store or MemoryBuckets()
        self.exempt = {a.strip() for a in settings.rate_exempt_addresses.split(",") if a.strip()}

    def for_sender(self, channel: str, sender: str) -> Decision:
        s = self.settings
        return self.store.take(f"sender:{channel}:{sender}", rate_per_minute=s.rate_per_sender_per_minute,
                               burst=s.rate_per_sender_burst)

    def for_address(self, address: Optional[str]) -> Decision:
        if not address or address in self.exempt:
            return Decision(True)
        s = self.settings
        return self.store.take(f"address:{address}", rate_per_minute=s.rate_per_address_per_minute,
                               burst=s.rate_per_address_burst)


@lru_cache(maxsize=1)
def get_limits() -> RateLimits:
    from bot.shared import bucket_store

    settings = get_settings()
    return RateLimits(settings, bucket_store(settings))
