"""The records database: what each knowledge turn was, for the clinic's staff.

``RecordStore`` is the only code that reads or writes the records tables; every method is
keyword-only. Its engine is made like the knowledge base's (``bot.knowledge.store.engine_for``);
a SQLite file, written on every turn, gets the write-ahead log and a connection pool
(``bot.ops.runtime.turn_sqlite_engine``).
Conversation ids are pseudonyms: ``conversation_key(sender_id)``, a keyed hash, so a record
cannot be traced back to a phone number or a widget session without the key - but "forget me"
and the purge, which know the sender id, find its records.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.answers.replies import RATED_KINDS
from bot.ops.settings import Settings, get_settings
from bot.staff.schema import Base, NluCandidate, NluCandidateSource, TurnRow

# What a turn was. Knowledge turns are recorded by the action that answers them; crisis turns
# (which never reach the action server) are counted by the Rasa server, without text.
ANSWERED = ("answer", "comparison", "search")
KINDS = ANSWERED + ("fallback", "decline", "advice", "crisis")
RATED = tuple(k for k in RATED_KINDS if k in KINDS)  # the records of replies that offer thumbs up / down
# bot.answers.replies.Reply.kind -> record kind
REPLY_KINDS = {"out_of_scope": "decline", "answers": "answer", "clinic": "answer"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class TurnRecord:
    """One turn as staff see it (the one type for a record, written and read)."""

    conversation: str
    channel: str
    kind: str
    at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=new_id)
    intent: Optional[str] = None
    confidence: Optional[float] = None
    low_confidence: bool = False
    topic: Optional[str] = None
    route: Optional[str] = None
    facts: Tuple[str, ...] = ()
    feedback: Optional[int] = None
    question: Optional[str] = None
    followup: Optional[str] = None
    message_id: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown record kind {self.kind!r}")
        if self.kind == "crisis" and (self.question or self.followup):
            raise ValueError("a crisis turn is counted, never stored as text")


def _record(row: TurnRow) -> TurnRecord:
    return TurnRecord(id=row.id, conversation=row.conversation, channel=row.channel, kind=row.kind, at=row.at,
                      intent=row.intent, confidence=row.confidence, low_confidence=bool(row.low_confidence),
                      topic=row.topic, route=row.route, facts=tuple((row.facts or "").split()),
                      feedback=row.feedback, question=row.question, followup=row.followup,
                      message_id=row.message_id)


def conversation_key(sender_id: str, *, settings: Optional[Settings] = None) -> str:
    """The records' pseudonym for a conversation (HMAC-SHA256 with RECORDS_ID_KEY)."""
    digest = hmac.new(_records_key(settings or get_settings()).encode(), sender_id.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def keyed_hash(purpose: str, value: str, *, settings: Optional[Settings] = None) -> str:
    """HMAC-SHA256 of ``value`` for ``purpose`` with RECORDS_ID_KEY (staff user names and
    addresses in the sign-in throttle and the log)."""
    key = _records_key(settings or get_settings()).encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _records_key(settings: Settings) -> str:
    return settings.records_id_key or _generated_key(settings.data_dir)


@lru_cache(maxsize=8)
def _generated_key(data_dir) -> str:
    """Read (or make) DATA_DIR/secrets/records-id.key once per process, not on every turn."""
    from bot.ops import runtime

    return runtime.secret(Settings(data_dir=data_dir), "records-id")


@dataclass(frozen=True)
class Period:
    """Whole UTC days from ``first`` to ``last``, both included."""

    first: date
    last: date

    @classmethod
    def last_days(cls, days: int, *, today: Optional[date] = None) -> "Period":
        today = today or utcnow().date()
        return cls(today - timedelta(days=days - 1), today)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, datetime.min.time())

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), datetime.min.time())

    def days(self) -> List[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


class RecordStore:
    def __init__(self, *, engine: Engine) -> None:
        self.engine = engine

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)

    def _session(self) -> Session:
        return Session(self.engine, future=True)

    # --- written by the assistant ---------------------------------------------------------

    def add(self, *, record: TurnRecord) -> None:
        with self._session() as session, session.begin():
            session.add(TurnRow(id=record.id, conversation=record.conversation, channel=record.channel,
                                at=record.at, kind=record.kind, intent=record.intent,
                                confidence=record.confidence, low_confidence=record.low_confidence,
                                topic=record.topic, route=record.route, facts=" ".join(record.facts),
                                feedback=record.feedback, question=record.question,
                                followup=record.followup, message_id=record.message_id))

    def latest_rated(self, *, conversation: str) -> Optional[TurnRecord]:
        """The conversation's latest reply that offered thumbs up / down."""
        query = (select(TurnRow).where(TurnRow.conversation == conversation, TurnRow.kind.in_(RATED))
                 .order_by(TurnRow.at.desc()).limit(1))
        with self._session() as session:
            row = session.execute(query).scalars().first()
            return _record(row) if row else None

    def rate(self, *, record_id: str, conversation: str, value: int, question: Optional[str] = None) -> bool:
        """Feedback on one record of this conversation (a thumbs-down may keep the question)."""
        if value not in (1, -1):
            raise ValueError("feedback is 1 or -1")
        values: Dict[str, object] = {"feedback": value}
        if question is not None:
            values["question"] = question
        with self._session() as session, session.begin():
            done = session.execute(update(TurnRow).where(TurnRow.id == record_id,
                                                         TurnRow.conversation == conversation).values(**values))
            return done.rowcount == 1

    def add_followup(self, *, conversation: str, text: str) -> bool:
        """The answer to "What were you looking for?": kept on the latest thumbs-down."""
        with self._session() as session, session.begin():
            row = session.execute(select(TurnRow).where(TurnRow.conversation == conversation, TurnRow.feedback == -1)
                                  .order_by(TurnRow.at.desc()).limit(1)).scalars().first()
            if row is None:
                return False
            row.followup = text
            return True

    # --- deletion ---------------------------------------------------------------------------

    def delete_conversation(self, *, conversation: str) -> Tuple[int, int]:
        """The conversation's records and the NLU candidates made from its questions: (records,
        candidates) deleted."""
        with self._session() as session, session.begin():
            made = select(NluCandidateSource.candidate_id).where(NluCandidateSource.conversation == conversation)
            ids = session.execute(made).scalars().all()
            candidates = self._delete_candidates(session, ids)
            return session.execute(delete(TurnRow).where(TurnRow.conversation == conversation)).rowcount, candidates

    @staticmethod
    def _delete_candidates(session: Session, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        session.execute(delete(NluCandidateSource).where(NluCandidateSource.candidate_id.in_(ids)))
        return session.execute(delete(NluCandidate).where(NluCandidate.id.in_(ids))).rowcount

    def count_before(self, *, cutoff: datetime) -> Dict[str, int]:
        with self._session() as session:
            return {
                "records": session.execute(select(func.count()).select_from(TurnRow).where(TurnRow.at < cutoff)).scalar_one(),
                "candidates": session.execute(select(func.count()).select_from(NluCandidate)
                                              .where(NluCandidate.added_at < cutoff)).scalar_one(),
            }

    def delete_before(self, *, cutoff: datetime, batch: int = 500) -> Dict[str, int]:
        """Records (and NLU candidates taken from them) older than ``cutoff``, ``batch`` rows per
        transaction so that a large purge never holds the table for long."""
        deleted = {"records": 0, "candidates": 0}
        for table, column, name in ((TurnRow, TurnRow.at, "records"), (NluCandidate, NluCandidate.added_at, "candidates")):
            key = getattr(table, table.__table__.primary_key.columns.values()[0].name)
            while True:
                with self._session() as session, session.begin():
                    ids = session.execute(select(key).where(column < cutoff).limit(batch)).scalars().all()
                    if not ids:
                        break
                    if table is NluCandidate:
                        self._delete_candidates(session, ids)
                    else:
                        session.execute(delete(table).where(key.in_(ids)))
                    deleted[name] += len(ids)
        return deleted

    # --- read by the dashboard ----------------------------------------------------------------

    def records(self, *, period: Period) -> List[TurnRecord]:
        query = (select(TurnRow).where(TurnRow.at >= period.start, TurnRow.at < period.end).order_by(TurnRow.at))
        with self._session() as session:
            return [_record(row) for row in session.execute(query).scalars()]

    def add_candidate(self, *, text: str, added_by: str) -> int:
        with self._session() as session, session.begin():
            row = NluCandidate(text=text, added_by=added_by, added_at=utcnow())
            session.add(row)
            session.flush()
            return row.id

    def add_candidates(self, *, record_ids: Sequence[str], added_by: str) -> List[int]:
        """One candidate per distinct question text of these records (the question, or the answer
        to "What were you looking for?"), each linked to the conversations it came from, so that
        it goes when they go ("forget me"). Records without text (answers, crisis turns) add nothing."""
        with self._session() as session, session.begin():
            rows = session.execute(select(TurnRow).where(TurnRow.id.in_(list(record_ids)))
                                   .order_by(TurnRow.at, TurnRow.id)).scalars().all()
            asked: Dict[str, set] = {}
            for row in rows:
                text = row.followup or row.question
                if text and row.kind != "crisis":
                    asked.setdefault(text, set()).add(row.conversation)
            made = []
            for text, conversations in asked.items():
                candidate = NluCandidate(text=text[:500], added_by=added_by, added_at=utcnow())
                session.add(candidate)
                session.flush()
                session.add_all(NluCandidateSource(candidate_id=candidate.id, conversation=c) for c in conversations)
                made.append(candidate.id)
            return made

    def questions(self, *, record_ids: Sequence[str]) -> List[str]:
        """The distinct question texts of these records (the question, or the answer to "What were
        you looking for?"), oldest first: a group's questions, for a clinic answer's examples."""
        with self._session() as session:
            rows = session.execute(select(TurnRow).where(TurnRow.id.in_(list(record_ids)))
                                   .order_by(TurnRow.at, TurnRow.id)).scalars().all()
            return list(dict.fromkeys(row.followup or row.question for row in rows
                                      if (row.followup or row.question) and row.kind != "crisis"))

    def candidates(self) -> List[Tuple[int, str, str, datetime]]:
        with self._session() as session:
            rows = session.execute(select(NluCandidate).order_by(NluCandidate.id)).scalars()
            return [(row.id, row.text, row.added_by, row.added_at) for row in rows]

    def remove_candidate(self, *, candidate_id: int) -> bool:
        with self._session() as session, session.begin():
            return self._delete_candidates(session, [candidate_id]) == 1


def unanswered(records: Iterable[TurnRecord]) -> List[TurnRecord]:
    """The questions staff should look at: fallbacks, low-confidence answers, thumbs-down."""
    return [r for r in records if (r.question or r.followup) and r.kind != "crisis"]


@dataclass(frozen=True)
class Summary:
    """The dashboard's aggregate tables for one period (each also a CSV export)."""

    daily: List[Dict[str, Any]]  # day, channel, conversations, messages
    topics: List[Dict[str, object]]  # topic, answers
    outcomes: List[Dict[str, object]]  # outcome, turns, share
    feedback_topics: List[Dict[str, object]]  # topic, helpful, not_helpful
    feedback_facts: List[Dict[str, object]]  # fact, helpful, not_helpful
    total: int


def summarize(records: Sequence[TurnRecord], *, period: Period) -> Summary:
    per_day: Dict[Tuple[date, str], List[TurnRecord]] = defaultdict(list)
    for record in records:
        per_day[(record.at.date(), record.channel)].append(record)
    daily = [{"day": day.isoformat(), "channel": channel, "conversations": len({r.conversation for r in rows}),
              "messages": len(rows)}
             for (day, channel), rows in sorted(per_day.items())]
    topics = Counter(r.topic or "(none)" for r in records if r.kind in ANSWERED)
    kinds = Counter(r.kind for r in records)
    total = len(records)
    outcomes = [{"outcome": kind, "turns": kinds.get(kind, 0),
                 "share": round(kinds.get(kind, 0) / total, 4) if total else 0.0}
                for kind in KINDS]
    by_topic: Dict[str, Counter] = defaultdict(Counter)
    by_fact: Dict[str, Counter] = defaultdict(Counter)
    for record in records:
        if record.feedback is None:
            continue
        vote = "helpful" if record.feedback > 0 else "not_helpful"
        by_topic[record.topic or "(none)"][vote] += 1
        for fact in record.facts:
            by_fact[fact][vote] += 1
    return Summary(
        daily=daily,
        topics=[{"topic": topic, "answers": count} for topic, count in topics.most_common()],
        outcomes=outcomes,
        feedback_topics=[{"topic": t, "helpful": c["helpful"], "not_helpful": c["not_helpful"]}
                         for t, c in sorted(by_topic.items())],
        feedback_facts=[{"fact": f, "helpful": c["helpful"], "not_helpful": c["not_helpful"]}
                        for f, c in sorted(by_fact.items())],
        total=total,
    )


def ensure_private_sqlite(url: str) -> None:
    """A SQLite records file is created owner-only, like the conversations."""
    if url.startswith("sqlite:///"):
        from pathlib import Path

        from bot.ops import runtime

        runtime.private_file(Path(url[len("sqlite:///"):]))


@lru_cache(maxsize=4)
def _store_for(url: str) -> RecordStore:
    from bot.knowledge.store import engine_for
    from bot.ops.runtime import turn_sqlite_engine

    ensure_private_sqlite(url)
    engine = turn_sqlite_engine(url, future=True) if url.startswith("sqlite") else engine_for(url)
    store = RecordStore(engine=engine)
    store.create_schema()
    return store


_ELSEWHERE: ContextVar[Optional[str]] = ContextVar("records_elsewhere", default=None)


@contextmanager
def records_elsewhere(url: str) -> Iterator[None]:
    """Inside this block (this task and what it awaits), records go to ``url`` instead of the
    clinic's records: explain mode runs the patient's path without writing into them."""
    token = _ELSEWHERE.set(url)
    try:
        yield
    finally:
        _ELSEWHERE.reset(token)


def get_record_store(*, url: Optional[str] = None) -> RecordStore:
    """The configured records database (tables created on first use)."""
    return _store_for(url or _ELSEWHERE.get() or get_settings().records_url)
