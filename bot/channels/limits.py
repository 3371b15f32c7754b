"""Rate limits for every channel: token buckets per sender and per client address.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_minute``; each message takes
one. A patient typing (a message every few seconds, a quick burst of button presses) never
empties it; a script sending hundreds of messages does, and is refused until it slows down.
The first refusal in a row is reported (so a channel can say "please slow down" once, not
once per message - an SMS reply costs money); later ones are silent.

The buckets live in this process by default; the cluster profile keeps them in Redis so
every instance sees the same counts (the bucket stores and their ``Decision`` are in
bot/channels/shared.py).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

from bot.ops.settings import Settings, get_settings
from bot.channels.shared import Decision, MemoryBuckets, bucket_store


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
    settings = get_settings()
    return RateLimits(settings, bucket_store(settings))
