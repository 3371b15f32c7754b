"""The clinic answers' store: typed, keyword-only access to bot/clinic/schema.py's tables.

Rules kept here, whoever calls: an answer goes live only when a second account approves the
revision it read (the author of that revision never can, and an answer with a refusal from the
content checks never can); an edit makes it a draft again (it needs a new approval); a
withdrawn answer is never answered. Every change is in the audit table, in the same transaction,
and changes the version number each action server watches.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.clinic.checks import refusals
from bot.clinic.schema import (APPROVED, DRAFT, WITHDRAWN, ClinicAnswerRow, ClinicAuditRow, ClinicBase,
                               ClinicQuestionRow, ClinicVersionRow)

MAX_EXAMPLES = 50
MAX_TITLE = 200
MAX_TEXT = 1200


class ClinicAnswerError(ValueError):
    """A change the rules do not allow; the message says why (shown to staff)."""


@dataclass(frozen=True)
class ClinicAnswer:
    id: int
    title: str
    text: str
    examples: Tuple[str, ...]
    status: str
    revision: int
    author: str
    reviewer: Optional[str]
    reviewed_at: Optional[datetime]
    created_at: datetime
    updated_at: datetime

    @property
    def fact_id(self) -> str:
        """How the answer is named among the knowledge base's facts (records, explain mode)."""
        return f"clinic-{self.id}"


@dataclass(frozen=True)
class AuditEntry:
    answer_id: int
    at: datetime
    actor: str
    action: str
    revision: int
    detail: str


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def clean_examples(examples: Sequence[str]) -> Tuple[str, ...]:
    """One question per entry, stripped, without repeats (case-insensitive), at most MAX_EXAMPLES."""
    seen, kept = set(), []
    for example in examples:
        text = " ".join((example or "").split())[:300]
        if text and text.lower() not in seen:
            seen.add(text.lower())
            kept.append(text)
    return tuple(kept[:MAX_EXAMPLES])


class ClinicStore:
    def __init__(self, *, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(bind=engine, future=True)
        self._schema_ready = False

    def create_schema(self) -> None:
        """Create the tables that are missing (never drops one)."""
        ClinicBase.metadata.create_all(self._engine)
        self._schema_ready = True

    def _session(self) -> Session:
        if not self._schema_ready:
            self.create_schema()
        return self._sessions()

    # -- reading -----------------------------------------------------------------------------
    def version(self) -> int:
        with self._session() as session:
            return session.execute(select(ClinicVersionRow.version).where(ClinicVersionRow.id == 1)).scalar() or 0

    def answers(self, *, status: Optional[str] = None) -> List[ClinicAnswer]:
        query = select(ClinicAnswerRow).order_by(ClinicAnswerRow.id)
        if status is not None:
            query = query.where(ClinicAnswerRow.status == status)
        with self._session() as session:
            rows = session.execute(query).scalars().all()
            examples = self._examples(session, [row.id for row in rows])
            return [self._answer(row, examples.get(row.id, ())) for row in rows]

    def approved(self) -> List[ClinicAnswer]:
        return self.answers(status=APPROVED)

    def get(self, *, answer_id: int) -> Optional[ClinicAnswer]:
        with self._session() as session:
            row = session.get(ClinicAnswerRow, answer_id)
            return self._answer(row, self._examples(session, [answer_id]).get(answer_id, ())) if row else None

    def audit(self, *, answer_id: Optional[int] = None, limit: int = 200) -> List[AuditEntry]:
        query = select(ClinicAuditRow).order_by(ClinicAuditRow.id.desc()).limit(limit)
        if answer_id is not None:
            query = query.where(ClinicAuditRow.answer_id == answer_id)
        with self._session() as session:
            return [AuditEntry(answer_id=r.answer_id, at=r.at, actor=r.actor, action=r.action, revision=r.revision,
                               detail=r.detail) for r in session.execute(query).scalars()]

    # -- changing ------------------------------------------------------------------------------
    def draft(self, *, title: str, text: str, examples: Sequence[str], author: str) -> int:
        """A new answer, a draft until a second account approves it; its id."""
        title, text, examples = self._valid(title=title, text=text, examples=examples)
        now = utcnow()
        with self._session() as session, session.begin():
            row = ClinicAnswerRow(title=title, text=text, status=DRAFT, revision=1, author=author,
                                  created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            session.add_all(ClinicQuestionRow(answer_id=row.id, text=q) for q in examples)
            self._log(session, answer_id=row.id, actor=author, action="drafted", revision=1,
                      detail=f"{len(examples)} example questions")
            return row.id

    def edit(self, *, answer_id: int, title: str, text: str, examples: Sequence[str], editor: str) -> int:
        """A new revision by ``editor`` (its author now): a draft again, even if it was live; the
        new revision number."""
        title, text, examples = self._valid(title=title, text=text, examples=examples)
        with self._session() as session, session.begin():
            row = self._row(session, answer_id)
            if row.status == WITHDRAWN:
                raise ClinicAnswerError("A withdrawn answer cannot be edited; write a new one.")
            was = row.status
            row.title, row.text, row.status, row.author = title, text, DRAFT, editor
            row.revision += 1
            row.reviewer, row.reviewed_at, row.updated_at = None, None, utcnow()
            session.query(ClinicQuestionRow).filter(ClinicQuestionRow.answer_id == answer_id).delete()
            session.add_all(ClinicQuestionRow(answer_id=answer_id, text=q) for q in examples)
            self._log(session, answer_id=answer_id, actor=editor, action="edited", revision=row.revision,
                      detail=("was live: waits for a new approval; " if was == APPROVED else "")
                      + f"{len(examples)} example questions")
            return row.revision

    def approve(self, *, answer_id: int, reviewer: str, revision: int) -> None:
        """Make ``revision`` live. Refused for its own author, for another revision than the one
        the reviewer read, for an answer that is not a draft, and for one the checks refuse."""
        with self._session() as session, session.begin():
            row = self._row(session, answer_id)
            if row.status != DRAFT:
                raise ClinicAnswerError(f"Only a draft can be approved (this answer is {row.status}).")
            if row.revision != revision:
                raise ClinicAnswerError("The answer was edited since you read it: read it again before approving.")
            if row.author == reviewer:
                raise ClinicAnswerError("You wrote this revision: another staff account must approve it.")
            if refusals(row.text):
                raise ClinicAnswerError("The content checks refuse this text: edit it first.")
            row.status, row.reviewer, row.reviewed_at = APPROVED, reviewer, utcnow()
            row.updated_at = row.reviewed_at
            self._log(session, answer_id=answer_id, actor=reviewer, action="approved", revision=row.revision,
                      detail=f"written by {row.author}")

    def withdraw(self, *, answer_id: int, actor: str, reason: str = "") -> None:
        """Never answered again (kept, with its history)."""
        with self._session() as session, session.begin():
            row = self._row(session, answer_id)
            if row.status == WITHDRAWN:
                raise ClinicAnswerError("This answer is already withdrawn.")
            was = row.status
            row.status, row.updated_at = WITHDRAWN, utcnow()
            self._log(session, answer_id=answer_id, actor=actor, action="withdrawn", revision=row.revision,
                      detail=f"was {was}" + (f": {reason[:300]}" if reason else ""))

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _valid(*, title: str, text: str, examples: Sequence[str]) -> Tuple[str, str, Tuple[str, ...]]:
        title, text = " ".join((title or "").split()), (text or "").strip()
        examples = clean_examples(examples)
        if not title or len(title) > MAX_TITLE:
            raise ClinicAnswerError(f"A title of 1 to {MAX_TITLE} characters is needed.")
        if not text or len(text) > MAX_TEXT:
            raise ClinicAnswerError(f"An answer of 1 to {MAX_TEXT} characters is needed.")
        if len(examples) < 2:
            raise ClinicAnswerError("At least two example questions are needed (one per line).")
        return title, text, examples

    @staticmethod
    def _row(session: Session, answer_id: int) -> ClinicAnswerRow:
        row = session.get(ClinicAnswerRow, answer_id, with_for_update=True)
        if row is None:
            raise ClinicAnswerError(f"There is no clinic answer {answer_id}.")
        return row

    @staticmethod
    def _log(session: Session, *, answer_id: int, actor: str, action: str, revision: int, detail: str) -> None:
        session.add(ClinicAuditRow(answer_id=answer_id, at=utcnow(), actor=actor, action=action, revision=revision,
                                   detail=detail))
        bumped = session.execute(update(ClinicVersionRow).where(ClinicVersionRow.id == 1)
                                 .values(version=ClinicVersionRow.version + 1))
        if not bumped.rowcount:
            session.add(ClinicVersionRow(id=1, version=1))

    @staticmethod
    def _examples(session: Session, ids: Sequence[int]) -> dict:
        found: dict = {}
        if not ids:
            return found
        query = select(ClinicQuestionRow).where(ClinicQuestionRow.answer_id.in_(ids)).order_by(ClinicQuestionRow.id)
        for row in session.execute(query).scalars():
            found.setdefault(row.answer_id, []).append(row.text)
        return {key: tuple(texts) for key, texts in found.items()}

    @staticmethod
    def _answer(row: ClinicAnswerRow, examples: Tuple[str, ...]) -> ClinicAnswer:
        return ClinicAnswer(id=row.id, title=row.title, text=row.text, examples=examples, status=row.status,
                            revision=row.revision, author=row.author, reviewer=row.reviewer,
                            reviewed_at=row.reviewed_at, created_at=row.created_at, updated_at=row.updated_at)


def copy_answers(*, source: Engine, target: Engine) -> int:
    """Copy every clinic table from ``source`` into ``target`` (a freshly built knowledge-base
    file that is about to replace it); the number of answers copied."""
    from sqlalchemy import inspect

    if not inspect(source).has_table(ClinicAnswerRow.__tablename__):
        return 0
    ClinicBase.metadata.create_all(target)
    copied = 0
    with source.connect() as reading, target.begin() as writing:
        for table in ClinicBase.metadata.sorted_tables:
            if not inspect(source).has_table(table.name):
                continue
            rows = [dict(row._mapping) for row in reading.execute(select(table))]
            if rows:
                writing.execute(table.insert(), rows)
            if table.name == ClinicAnswerRow.__tablename__:
                copied = len(rows)
    return copied


@lru_cache(maxsize=4)
def _store_for(url: str) -> ClinicStore:
    from bot.knowledge.store import engine_for

    return ClinicStore(engine=engine_for(url))


def get_clinic_store(*, database_url: Optional[str] = None) -> ClinicStore:
    """The clinic answers in the knowledge base's database (KB_DATABASE_URL)."""
    from bot.ops.settings import get_settings

    return _store_for(database_url or get_settings().database_url)


__all__ = ["APPROVED", "DRAFT", "WITHDRAWN", "AuditEntry", "ClinicAnswer", "ClinicAnswerError", "ClinicStore",
           "copy_answers", "get_clinic_store"]
