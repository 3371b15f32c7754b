"""State the channels keep between messages: rate-limit buckets, delivery ids already handled,
numbered options offered on SMS. One process keeps it in memory (the embedded profile); the
cluster profile keeps it in Redis so that every Rasa instance sees the same state.
"""
from __future__ import annotations

from bot.settings import Settings


def bucket_store(settings: Settings):
    from bot.channels.limits import MemoryBuckets

    return MemoryBuckets()


def socketio_manager(settings: Settings):
    """Where socket.io keeps its rooms: this process (None: python-socketio's default)."""
    return None
