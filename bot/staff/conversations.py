"""Deleting conversations: "forget me" and the retention purge share this one path.

Rasa 3.6 has no delete API, so a conversation's events are deleted from the tracker store
directly (``bot.rasa.stores.PrePingSQLTrackerStore``), together with its staff records - always
inside the lock store's lock for that conversation: deleting while a turn is in flight would
let that turn's save write the whole conversation back. "Forget me" runs inside the turn that
confirms it, which already holds the lock (the turn's save is replaced by the deletion,
bot/staff/tracker_store.py); the purge takes each conversation's lock itself, re-checks that it is still
idle, deletes, and writes one audit line (hashed id and counts, never the sender id).
"""
from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, List, Optional

from rasa.core.lock_store import LockError, LockStore

from bot.staff.records import RecordStore, conversation_key, utcnow

logger = logging.getLogger("bot.staff.audit")


def sql_store(tracker_store: Any) -> Any:
    """The SQL tracker store inside Rasa's wrappers (it is the one that can delete)."""
    store = tracker_store
    while not hasattr(store, "delete_conversation") and hasattr(store, "_tracker_store"):
        store = store._tracker_store
    if not hasattr(store, "delete_conversation"):
        raise TypeError(f"{type(store).__name__} cannot delete conversations (use bot.rasa.stores.PrePingSQLTrackerStore)")
    return store


@dataclass
class Deleted:
    conversation: str  # the hashed id
    events: int
    records: int
    candidates: int = 0  # NLU candidates made from its questions


async def delete_locked(sender_id: str, *, tracker_store: Any, records: RecordStore, why: str) -> Deleted:
    """Delete one conversation, its records and the NLU candidates made from its questions. The
    caller holds the conversation's lock."""
    key = conversation_key(sender_id)
    store = sql_store(tracker_store)
    # first: if the events fail, a retry finds them
    rows, candidates = records.delete_conversation(conversation=key)
    events = await store.delete_conversation(sender_id)
    logger.info("%s: deleted conversation %s (events=%d, records=%d, candidates=%d)", why, key, events, rows,
                candidates, extra={"audit": why, "conversation": key, "events": events, "records": rows,
                                   "candidates": candidates})
    return Deleted(key, events, rows, candidates)


@dataclass
class PurgeResult:
    dry_run: bool
    cutoff: datetime
    conversations: List[Deleted] = field(default_factory=list)
    busy: int = 0  # conversations whose lock was not free in time (next run gets them)
    records: int = 0  # records (and NLU candidates) older than the cutoff
    candidates: int = 0


def cutoff_for(retention_days: int, *, now: Optional[datetime] = None) -> datetime:
    return (now or utcnow()) - timedelta(days=retention_days)


async def purge(*, tracker_store: Any, lock_store: LockStore, records: RecordStore, cutoff: datetime,
                dry_run: bool = False, batch: int = 100, lock_wait_seconds: float = 5.0,
                say: Callable[[str], None] = lambda line: None) -> PurgeResult:
    """Delete every conversation idle since before ``cutoff`` (UTC), one at a time inside its
    lock, ``batch`` ids per read; then the records older than ``cutoff``. A dry run only counts."""
    store = sql_store(tracker_store)
    before = cutoff.replace(tzinfo=timezone.utc).timestamp()
    result = PurgeResult(dry_run=dry_run, cutoff=cutoff)
    after = ""
    while True:
        senders = await store.idle_conversations(before=before, after=after, limit=batch)
        if not senders:
            break
        after = senders[-1]
        for sender in senders:
            if dry_run:
                key = conversation_key(sender)
                counted = Deleted(key, await store.count_events(sender), 0)
                say(f"would delete conversation {key} (events={counted.events})")
                result.conversations.append(counted)
                continue
            deleted = await _purge_one(sender, store=store, lock_store=lock_store, records=records,
                                       before=before, wait=lock_wait_seconds)
            if deleted is None:
                result.busy += 1
                say(f"conversation {conversation_key(sender)} is busy: left for the next purge")
            elif deleted.events or deleted.records:
                say(f"deleted conversation {deleted.conversation} (events={deleted.events}, records={deleted.records}, "
                    f"candidates={deleted.candidates})")
                result.conversations.append(deleted)
        await asyncio.sleep(0)  # let patients' turns run between batches
    if dry_run:
        counts = records.count_before(cutoff=cutoff)
    else:
        counts = records.delete_before(cutoff=cutoff)
    result.records, result.candidates = counts["records"], counts["candidates"]
    verb = "would delete" if dry_run else "deleted"
    quiet = not (dry_run or result.conversations or result.records or result.candidates or result.busy)
    logger.log(logging.DEBUG if quiet else logging.INFO,
               "purge: %s %d conversations, %d older records, %d NLU candidates (cutoff %s, %d busy)",
               verb, len(result.conversations), result.records, result.candidates, cutoff.isoformat(), result.busy,
               extra={"audit": "purge", "dry_run": dry_run})
    say(f"{verb} {len(result.conversations)} conversations, {result.records} older records and "
        f"{result.candidates} NLU candidates (older than {cutoff:%Y-%m-%d %H:%M} UTC); {result.busy} busy")
    return result


async def _purge_one(sender: str, *, store: Any, lock_store: LockStore, records: RecordStore, before: float,
                     wait: float) -> Optional[Deleted]:
    lock = lock_store.lock(sender, wait_time_in_seconds=0.1)
    try:
        await asyncio.wait_for(lock.__aenter__(), timeout=wait)
    except (asyncio.TimeoutError, LockError):
        return None
    try:
        latest = await store.last_activity(sender)
        if latest is not None and latest >= before:
            return Deleted(conversation_key(sender), 0, 0)  # the patient came back meanwhile
        return await delete_locked(sender, tracker_store=store, records=records, why="purge")
    finally:
        await lock.__aexit__(None, None, None)


def conversations_lock_path(settings: Any) -> Path:
    return settings.data_dir / "run" / "conversations.lock"


class ServerRunning(RuntimeError):
    """The embedded assistant is running: its conversations are locked inside it."""


def hold_conversations_lock(settings: Any) -> int:
    """Take DATA_DIR/run/conversations.lock exclusively (the file descriptor; closed, it is free).
    Raises ServerRunning when another process holds it."""
    from bot.ops import runtime

    path = runtime.private_file(conversations_lock_path(settings))
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ServerRunning(str(path)) from None
    return fd


def stores_for_command_line(settings: Any) -> tuple:
    """The tracker store and the lock store a command-line purge must use: the cluster's
    PostgreSQL and Redis lock store (shared with the running instances), or - embedded - the
    SQLite store with a lock store of its own, which is safe only while no server runs (the caller
    holds DATA_DIR/run/conversations.lock, ``hold_conversations_lock``)."""
    from bot.rasa.stores import AtomicRedisLockStore, PrePingSQLTrackerStore

    if settings.profile == "cluster":
        return (PrePingSQLTrackerStore(url=settings.cluster_database_url),
                AtomicRedisLockStore(url=settings.redis_url))
    from rasa.core.lock_store import InMemoryLockStore

    return PrePingSQLTrackerStore(url=f"sqlite:///{settings.tracker_store_path}"), InMemoryLockStore()


def purge_command(settings: Any, *, dry_run: bool, days: Optional[int], say: Callable[[str], None]) -> int:
    """`bot purge`: an exit status. ``say`` gets every line, the audit lines included."""
    from bot.staff.records import get_record_store

    held = None
    if settings.profile == "embedded" and not dry_run:
        try:
            held = hold_conversations_lock(settings)
        except ServerRunning:
            say(f"The assistant is running ({conversations_lock_path(settings)} is held). It purges by itself every "
                f"{settings.purge_interval_minutes:g} minutes; to purge by hand now, stop it first "
                "(--dry-run works while it runs).")
            return 1
    try:
        if settings.profile == "embedded" and not settings.tracker_store_path.exists():
            say(f"No conversations yet ({settings.tracker_store_path} does not exist).")
            tracker_store = None
        else:
            tracker_store, lock_store = stores_for_command_line(settings)
        records = get_record_store(url=settings.records_url)
        cutoff = cutoff_for(days or settings.retention_days)
        if tracker_store is None:
            counts = records.count_before(cutoff=cutoff) if dry_run else records.delete_before(cutoff=cutoff)
            say(f"{'would delete' if dry_run else 'deleted'} {counts['records']} older records and "
                f"{counts['candidates']} NLU candidates")
            return 0
        result = asyncio.run(purge(tracker_store=tracker_store, lock_store=lock_store, records=records,
                                   cutoff=cutoff, dry_run=dry_run, say=say))
        return 0 if not result.busy else 3
    finally:
        if held is not None:
            os.close(held)
