"""Stores for several Rasa instances (the cluster profile): referenced from endpoints.yml.

* ``PrePingSQLTrackerStore`` - Rasa's SQLTrackerStore on PostgreSQL with ``pool_pre_ping``
  (a connection left over from before a database restart is replaced instead of failing the
  first turn) and a short wait-and-retry when the database is unreachable. When it stays
  unreachable the turn fails loudly (``StoreUnavailable``; Rasa's fail-safe wrapper is told to
  let it through, bot/rasa/patches.py) and the patient gets the apology - never a conversation
  silently started afresh without its context.
* ``AtomicRedisLockStore`` - Rasa's RedisLockStore issues tickets with a GET-modify-SET that
  two instances can interleave (rasa issues 9213, 7921): two messages of one conversation
  arriving at two instances within milliseconds both run. Here every read-modify-write of a
  lock is one optimistic Redis transaction (WATCH/MULTI/EXEC, retried on conflict), and the
  tickets of an instance that died are dropped within seconds.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Text, Tuple
from urllib.parse import urlparse

from rasa.core.lock import TicketLock
from rasa.core.lock_store import DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX, LOCK_LIFETIME, LockError, LockStore
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore

logger = logging.getLogger(__name__)


class StoreUnavailable(RuntimeError):
    """The conversation store cannot be reached: fail the turn rather than lose its context."""


def postgres_url(url: str) -> str:
    """``postgresql://`` for psycopg2: Rasa reads pool and schema settings only for that spelling
    (``postgresql+psycopg2://`` silently loses them)."""
    return "postgresql://" + url.split("://", 1)[1] if url.startswith("postgresql+psycopg2://") else url


def create_conversation_schema(url: str) -> None:
    """Rasa's ``events`` table, created once before any instance starts (instances starting
    together would otherwise race to create it)."""
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url(url), pool_pre_ping=True)
    try:
        SQLTrackerStore.Base.metadata.create_all(engine)
    finally:
        engine.dispose()


class PrePingSQLTrackerStore(SQLTrackerStore):
    """``type: bot.rasa.stores.PrePingSQLTrackerStore`` in endpoints.yml. The database is DATABASE_URL
    (or the endpoint's ``url``), so no password is written into a YAML file."""

    ATTEMPTS = 10
    WAIT_SECONDS = 1.0

    def __init__(self, domain: Any = None, host: Optional[str] = None, event_broker: Any = None,
                 url: Optional[str] = None, **kwargs: Any) -> None:
        # Rasa falls back to an in-memory store - conversations silently forgotten - when a custom
        # store's constructor raises AttributeError or ImportError: fail loudly instead.
        try:
            self._connect(url or (host if host and "://" in host else None))
        except (AttributeError, ImportError) as error:
            raise StoreUnavailable(f"the tracker store could not be set up ({type(error).__name__})") from None
        for key in ("dialect", "db", "port", "username", "password", "login_db", "query"):
            kwargs.pop(key, None)  # Rasa's SQLTrackerStore options: the URL says all of this
        TrackerStore.__init__(self, domain, event_broker, **kwargs)
        from bot.ops.settings import get_settings
        from bot.rasa.tracker_cache import SessionCache

        self.sessions = SessionCache(capacity=get_settings().tracker_cache_conversations)

    def _connect(self, url: Optional[str]) -> None:
        import sqlalchemy as sa
        from rasa.core.tracker_store import create_engine_kwargs

        from bot.ops.settings import get_settings

        url = postgres_url(url or get_settings().cluster_database_url)
        if not url:
            raise StoreUnavailable("DATABASE_URL is not set")
        options = create_engine_kwargs(url)
        if url.startswith("postgresql"):
            # An unreachable database (dropped packets, not a refusal) must fail within seconds,
            # not the system's TCP timeout: Rasa calls the store on its event loop.
            options["connect_args"] = {"connect_timeout": 3, "keepalives": 1, "keepalives_idle": 10,
                                       "options": "-c statement_timeout=10000"}
        if url.startswith("sqlite"):
            from bot.ops.runtime import turn_sqlite_engine

            self.engine = turn_sqlite_engine(url, **options)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True, **options)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    async def _retrying(self, operation: Callable[[], Any], what: str) -> Any:
        import sqlalchemy.exc

        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                return await operation()
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                    sqlalchemy.exc.DisconnectionError, sqlalchemy.exc.TimeoutError) as error:
                logger.warning("tracker store: could not %s (%s), attempt %d of %d",
                               what, type(error).__name__, attempt, self.ATTEMPTS)
                if attempt == self.ATTEMPTS:
                    raise StoreUnavailable(f"the conversation store could not {what}") from None
                await asyncio.sleep(self.WAIT_SECONDS)
            except sqlalchemy.exc.SQLAlchemyError as error:
                # Any other database error (a missing table, a read-only failover): said by its
                # type only - SQLAlchemy's message carries the statement's parameters, i.e. the
                # patient's messages - and never Rasa's silent fall-back to an in-memory store.
                logger.error("tracker store: could not %s (%s)", what, type(error).__name__)
                raise StoreUnavailable(f"the conversation store could not {what}") from None

    async def retrieve(self, sender_id: Text) -> Any:
        """The latest session's tracker, reading only the events added since this process last
        read it (bot/rasa/tracker_cache.py)."""
        return await self._retrying(lambda: self._retrieve_session(sender_id), "read a conversation")

    async def _retrieve_session(self, sender_id: Text) -> Any:
        import sqlalchemy as sa
        from rasa.shared.core.events import deserialise_events
        from rasa.shared.core.trackers import DialogueStateTracker

        events = self._events()
        with self.session_scope() as session:
            query = self._event_query(session, sender_id, fetch_events_from_all_sessions=False)
            rows, highest, latest = query.order_by(None).with_entities(
                sa.func.count(events.id), sa.func.max(events.id), sa.func.max(events.timestamp)).one()
            mark = (rows, highest, latest)
            cached = self.sessions.get(sender_id)
            known: Optional[List[Any]]
            if cached is not None and cached.mark == mark:
                known = list(cached.events)
            elif cached is not None and rows > cached.mark[0] and cached.mark[1] is not None:
                added = query.filter(events.id > cached.mark[1]).all()
                known = (list(cached.events) + deserialise_events([json.loads(row.data) for row in added])
                         if cached.mark[0] + len(added) == rows else None)
            else:
                known = None
            if known is None:  # first read, or rows deleted or a new session: read the session
                loaded = query.all()
                mark = (len(loaded), loaded[-1].id if loaded else None, max((row.timestamp for row in loaded), default=None))
                known = deserialise_events([json.loads(row.data) for row in loaded])
        if not known or not self.domain:
            self.sessions.forget(sender_id)
            return None
        self.sessions.put(sender_id, mark=mark, events=known)
        return DialogueStateTracker.from_events(sender_id, known, self.domain.slots)

    def _additional_events(self, session: Any, tracker: Any) -> Any:
        """The events a turn added to the tracker it retrieved from here: those after the events
        it was built from, without counting the session's rows again (the conversation's lock
        keeps anyone else from writing it meanwhile); Rasa's count for any other tracker."""
        cached = self.sessions.get(tracker.sender_id)
        events = tracker.events
        known = len(cached.events) if cached is not None else 0
        if (cached is not None and known and len(events) >= known and events[0] is cached.events[0]
                and events[known - 1] is cached.events[-1]):
            return itertools.islice(events, known, len(events))
        return SQLTrackerStore._additional_events(self, session, tracker)

    async def retrieve_full_tracker(self, conversation_id: Text) -> Any:
        return await self._retrying(lambda: SQLTrackerStore.retrieve_full_tracker(self, conversation_id),
                                    "read a conversation")

    async def keys(self) -> Any:
        return await self._retrying(lambda: SQLTrackerStore.keys(self), "list conversations")

    async def save(self, tracker: Any) -> None:
        await self._retrying(lambda: SQLTrackerStore.save(self, tracker), "save a conversation")

    # Rasa 3.6 has no way to delete a conversation: these read and delete the ``events`` table
    # directly. Callers hold the conversation's lock (bot/staff/conversations.py).

    def _events(self) -> Any:
        return SQLTrackerStore.SQLEvent

    async def last_activity(self, sender_id: Text) -> Optional[float]:
        """The time of the conversation's latest event (None: no such conversation)."""
        import sqlalchemy as sa

        async def read() -> Optional[float]:
            with self.session_scope() as session:
                return session.query(sa.func.max(self._events().timestamp)).filter(
                    self._events().sender_id == sender_id).scalar()

        return await self._retrying(read, "read a conversation")

    async def count_events(self, sender_id: Text) -> int:
        async def read() -> int:
            with self.session_scope() as session:
                return session.query(self._events()).filter(self._events().sender_id == sender_id).count()

        return await self._retrying(read, "read a conversation")

    async def idle_conversations(self, *, before: float, after: Text = "", limit: int = 100) -> list:
        """Up to ``limit`` conversation ids, in order, after ``after``, whose latest event is
        older than ``before`` (a Unix time)."""
        import sqlalchemy as sa

        events = self._events()

        async def read() -> list:
            with self.session_scope() as session:
                query = (session.query(events.sender_id).filter(events.sender_id > after)
                         .group_by(events.sender_id).having(sa.func.max(events.timestamp) < before)
                         .order_by(events.sender_id).limit(limit))
                return [row[0] for row in query]

        return await self._retrying(read, "list conversations")

    async def delete_conversation(self, sender_id: Text) -> int:
        """Delete every event of the conversation; the number deleted."""
        async def delete() -> int:
            with self.session_scope() as session:
                deleted = session.query(self._events()).filter(
                    self._events().sender_id == sender_id).delete(synchronize_session=False)
                session.commit()
                self.sessions.forget(sender_id)
                return deleted

        return await self._retrying(delete, "delete a conversation")


def redis_client(url: str, *, socket_timeout: float = 5.0) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)


class AtomicRedisLockStore(LockStore):
    """``type: bot.rasa.stores.AtomicRedisLockStore`` in endpoints.yml (Redis: REDIS_URL, or the
    endpoint's ``url``).

    Every read-modify-write of a conversation's lock is one optimistic Redis transaction
    (WATCH/MULTI/EXEC, retried on conflict). Each ticket also names the process that holds it,
    and every process keeps a short-lived "alive" key in Redis: when an instance dies mid-turn,
    the others drop its tickets within seconds instead of waiting out the lock's lifetime (60 s)
    - the patient's resent message is answered at once."""

    WAIT_SECONDS = 0.05  # between looks at a lock held by another turn (Rasa's default: 1 s)
    KEY_TTL_SECONDS = 3600  # a safety net: locks are deleted when their conversation is served
    # A process that has not said it is alive (every second) for this long is gone. Well above one
    # heartbeat plus the Redis timeout, so a live but briefly starved process is never taken for
    # dead (that would let two turns of one conversation run at once).
    ALIVE_SECONDS = 10

    def __init__(self, endpoint_config: Any = None, url: Optional[str] = None, key_prefix: str = "") -> None:
        from bot.ops.settings import get_settings

        kwargs = dict(getattr(endpoint_config, "kwargs", None) or {})
        url = url or getattr(endpoint_config, "url", None) or get_settings().redis_url
        if not url:
            raise LockError("REDIS_URL is not set")
        if not urlparse(url).scheme:
            url = f"redis://{url}:{kwargs.get('port', 6379)}/{kwargs.get('db', 1)}"
        self.red = redis_client(url, socket_timeout=float(kwargs.get("socket_timeout", 5)))
        prefix = key_prefix or kwargs.get("key_prefix") or ""
        self.key_prefix = (f"{prefix}:" if prefix else "") + DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._heartbeat = threading.Thread(target=self._say_alive, name="lock-store-heartbeat", daemon=True)
        self._heartbeat.start()
        super().__init__()

    # -- liveness ----------------------------------------------------------------------------------------
    def _alive_key(self, owner: str) -> str:
        return f"{self.key_prefix}alive:{owner}"

    def _say_alive(self) -> None:
        import redis

        failing = False
        while True:
            try:
                self.red.set(self._alive_key(self.owner), "1", ex=self.ALIVE_SECONDS)
                failing = False
            except redis.RedisError as error:
                if not failing:
                    logger.error("lock store: cannot reach Redis (%s)", type(error).__name__)
                failing = True
            time.sleep(1.0)

    # -- one transaction per change --------------------------------------------------------------------
    def _key(self, conversation_id: Text) -> str:
        return self.key_prefix + conversation_id

    def _atomically(self, conversation_id: Text,
                    change: Callable[[Optional[TicketLock], Dict[str, str], Any], Tuple[Optional[TicketLock], Any]]) -> Any:
        """Read the lock and its ticket owners, ``change`` them, and write them back (or delete
        the lock when ``change`` returns None) in one optimistic transaction; retried if another
        process wrote in between."""
        key = self._key(conversation_id)
        outcome: dict = {}

        def transaction(pipe: Any) -> None:
            raw = pipe.get(key)
            data = json.loads(raw) if raw else {}
            lock = TicketLock.from_dict(data) if raw else None
            owners = {str(k): v for k, v in (data.get("owners") or {}).items()}
            new_lock, outcome["value"] = change(lock, owners, pipe)
            pipe.multi()
            if new_lock is None:
                pipe.delete(key)
            else:
                numbers = {str(t.number) for t in new_lock.tickets}
                stored = json.loads(new_lock.dumps())
                stored["owners"] = {k: v for k, v in owners.items() if k in numbers}
                pipe.set(key, json.dumps(stored), ex=self.KEY_TTL_SECONDS)

        self.red.transaction(transaction, key)
        return outcome.get("value")

    def _drop_dead(self, lock: TicketLock, owners: Dict[str, str], pipe: Any) -> None:
        """Remove expired tickets, and tickets of processes that are no longer alive."""
        lock.remove_expired_tickets()
        for ticket in list(lock.tickets):
            owner = owners.get(str(ticket.number))
            if owner and owner != self.owner and not pipe.exists(self._alive_key(owner)):
                logger.warning("lock store: a ticket of a process that stopped was dropped")
                lock.remove_ticket_for(ticket.number)

    # -- Rasa's LockStore interface ----------------------------------------------------------------
    def lock(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME,
             wait_time_in_seconds: float = WAIT_SECONDS) -> Any:
        """Rasa's ticket lock, looking again every 50 ms instead of every second: a message
        that arrives while its conversation's previous turn runs is answered right after it."""
        return super().lock(conversation_id, lock_lifetime, wait_time_in_seconds)

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        raw = self.red.get(self._key(conversation_id))
        return TicketLock.from_dict(json.loads(raw)) if raw else None

    def holders(self, conversation_id: Text) -> List[str]:
        """The processes ("host:pid:id") holding or waiting for a ticket of the conversation."""
        raw = self.red.get(self._key(conversation_id))
        return sorted(set((json.loads(raw).get("owners") or {}).values())) if raw else []

    def delete_lock(self, conversation_id: Text) -> None:
        self.red.delete(self._key(conversation_id))

    def save_lock(self, lock: TicketLock) -> None:
        self._atomically(lock.conversation_id, lambda old, owners, pipe: (lock, None))

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(lock: Optional[TicketLock], owners: Dict[str, str], pipe: Any) -> Tuple[TicketLock, int]:
            lock = lock or self.create_lock(conversation_id)
            ticket = lock.issue_ticket(lock_lifetime)
            owners[str(ticket)] = self.owner
            return lock, ticket

        try:
            self.red.set(self._alive_key(self.owner), "1", ex=self.ALIVE_SECONDS)
            return self._atomically(conversation_id, change)
        except Exception as error:  # noqa: BLE001 - Rasa expects LockError
            raise LockError(f"Error while acquiring lock ({type(error).__name__})") from None

    def update_lock(self, conversation_id: Text) -> None:
        def change(lock: Optional[TicketLock], owners: Dict[str, str], pipe: Any) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                self._drop_dead(lock, owners, pipe)
            return lock, None

        self._atomically(conversation_id, change)

    def _remove_own(self, lock: TicketLock, owners: Dict[str, str], ticket_number: int) -> None:
        """Remove this process's ticket only: numbers start again at 0 when a lock is deleted, so
        the same number may now be another process's ticket."""
        if owners.get(str(ticket_number), self.owner) == self.owner:
            lock.remove_ticket_for(ticket_number)

    def _released(self, conversation_id: Text, change: Callable) -> None:
        """A release that fails (Redis unreachable at that moment) is logged, not raised: the turn
        is done and its reply must still go out; the ticket expires with the lock's lifetime."""
        try:
            self._atomically(conversation_id, change)
        except Exception as error:  # noqa: BLE001
            logger.error("lock store: could not release a ticket (%s)", type(error).__name__)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock], owners: Dict[str, str], pipe: Any) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                self._remove_own(lock, owners, ticket_number)
            return lock, None

        self._released(conversation_id, change)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Finish serving this ticket and delete the lock if nobody waits: one transaction."""

        def change(lock: Optional[TicketLock], owners: Dict[str, str], pipe: Any) -> Tuple[Optional[TicketLock], None]:
            if lock is None:
                return None, None
            self._remove_own(lock, owners, ticket_number)
            return (lock if lock.is_someone_waiting() else None), None

        self._released(conversation_id, change)
