"""The knowledge base interface and its SQLAlchemy implementation.

Actions depend on the small ``KnowledgeBase`` interface, so tests (or another
store) can inject their own instance; ``get_knowledge_base()`` is the lazy
factory for the configured SQL store.
"""
from __future__ import annotations

import abc
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.knowledge import schema
from bot.knowledge.records import FACT, ROUTES, ConflictRecord, FactRecord, SourceRecord, TopicRecord
from bot.ops.settings import get_settings


class KnowledgeBaseMissing(RuntimeError):
    """The database has not been built yet (run ``python -m bot build``)."""


class KnowledgeBase(abc.ABC):
    """What the assistant needs from a knowledge base."""

    @abc.abstractmethod
    def topics(self) -> Sequence[TopicRecord]:
        """All topics, in curated order."""

    @abc.abstractmethod
    def facts(self, *, topic: Optional[str] = None, route: Optional[str] = None, kind: Optional[str] = FACT
              ) -> Sequence[FactRecord]:
        """Facts, optionally of one topic and/or about one route, in curated order. ``kind``: the
        ordinary facts by default, VERDICT for the direct answers, None for both."""

    def fact_questions(self) -> Dict[str, Tuple[str, ...]]:
        """Example questions per fact id (what the fact ranker learns from); none by default."""
        return {}

    @abc.abstractmethod
    def conflict(self, *, conflict_id: str) -> ConflictRecord:
        """The note that introduces a disagreement between the articles."""

    @abc.abstractmethod
    def sources(self) -> Sequence[SourceRecord]:
        """Every source article."""

    @abc.abstractmethod
    def route_synonyms(self) -> Dict[str, Tuple[str, ...]]:
        """Lay phrases for each route id."""

    @abc.abstractmethod
    def route_labels(self) -> Dict[str, str]:
        """Display label for each route id."""


def _source(row: schema.Source) -> SourceRecord:
    return SourceRecord(
        id=row.id,
        short_name=row.short_name,
        publisher=row.publisher,
        title=row.title,
        citation=row.citation,
    )


def _fact(row: schema.Fact) -> FactRecord:
    return FactRecord(
        id=row.id,
        topic=row.topic_id,
        routes=tuple(sorted((r.route for r in row.routes), key=("iv", "im").index)),
        text=row.text,
        source=_source(row.source),
        position=row.position,
        conflict=row.conflict_id,
        restates=tuple(sorted(s.sentence_id for s in row.sentences)),
        kind=row.kind,
        repeats=tuple(sorted(r.other_id for r in row.repeats)),
    )


class SqlKnowledgeBase(KnowledgeBase):
    """Knowledge base stored in any database SQLAlchemy can reach."""

    def __init__(self, *, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(bind=engine, future=True)
        self._built = False

    def _session(self) -> Session:
        return self._sessions()

    def _check_built(self) -> None:
        """Fail with a clear message until the database is built (checked until it is, then trusted)."""
        from sqlalchemy import inspect

        if self._built:
            return
        self._built = inspect(self._engine).has_table(schema.Fact.__tablename__)
        if not self._built:
            raise KnowledgeBaseMissing(
                f"No knowledge base at {self._engine.url!r}; run `python -m bot build` first."
            )

    def topics(self) -> List[TopicRecord]:
        self._check_built()
        with self._session() as session:
            rows = session.execute(select(schema.Topic).order_by(schema.Topic.position)).scalars()
            return [TopicRecord(id=t.id, title=t.title, keywords=tuple(t.keywords.split())) for t in rows]

    def facts(self, *, topic: Optional[str] = None, route: Optional[str] = None, kind: Optional[str] = FACT
              ) -> List[FactRecord]:
        self._check_built()
        query = select(schema.Fact).join(schema.Topic)
        if kind is not None:
            query = query.where(schema.Fact.kind == kind)
        if topic is not None:
            query = query.where(schema.Fact.topic_id == topic)
        if route is not None:
            query = query.where(
                schema.Fact.id.in_(select(schema.FactRoute.fact_id).where(schema.FactRoute.route == route))
            )
        query = query.order_by(schema.Topic.position, schema.Fact.position)
        with self._session() as session:
            return [_fact(row) for row in session.execute(query).unique().scalars()]

    def conflict(self, *, conflict_id: str) -> ConflictRecord:
        self._check_built()
        with self._session() as session:
            row = session.get(schema.Conflict, conflict_id)
            if row is None:
                raise KeyError(conflict_id)
            return ConflictRecord(id=row.id, topic=row.topic_id, note=row.note)

    def sources(self) -> List[SourceRecord]:
        self._check_built()
        with self._session() as session:
            return [_source(s) for s in session.execute(select(schema.Source)).scalars()]

    def route_synonyms(self) -> Dict[str, Tuple[str, ...]]:
        self._check_built()
        result: Dict[str, List[str]] = {}
        with self._session() as session:
            rows = session.execute(select(schema.RouteSynonym).order_by(schema.RouteSynonym.id)).scalars()
            for row in rows:
                result.setdefault(row.route, []).append(row.phrase)
        return {route: tuple(phrases) for route, phrases in result.items()}

    def fact_questions(self) -> Dict[str, Tuple[str, ...]]:
        self._check_built()
        found: Dict[str, List[str]] = {}
        with self._session() as session:
            for row in session.execute(select(schema.FactQuestion).order_by(schema.FactQuestion.id)).scalars():
                found.setdefault(row.fact_id, []).append(row.text)
        return {fact_id: tuple(texts) for fact_id, texts in found.items()}

    def route_labels(self) -> Dict[str, str]:
        self._check_built()
        with self._session() as session:
            rows = session.execute(select(schema.RouteSynonym.route, schema.RouteSynonym.label).distinct())
            return dict(rows.all())


class KnowledgeSnapshot(KnowledgeBase):
    """Another knowledge base read completely, once, and served from memory.

    The curated knowledge changes only when it is rebuilt (``python -m bot build``, or the
    cluster's start), so the action server reads it at start-up and answers without a database
    round trip - and keeps answering while the database restarts. A rebuilt knowledge base is
    picked up when the action server restarts."""

    def __init__(self, source: KnowledgeBase) -> None:
        self._topics = tuple(source.topics())
        self._facts = tuple(source.facts(kind=None))
        self._route_facts = {route: {f.id for f in source.facts(route=route, kind=None)} for route in ROUTES}
        self._conflicts = {f.conflict: source.conflict(conflict_id=f.conflict) for f in self._facts if f.conflict}
        self._sources = tuple(source.sources())
        self._synonyms = dict(source.route_synonyms())
        self._labels = dict(source.route_labels())
        self._questions = dict(source.fact_questions())

    def topics(self) -> List[TopicRecord]:
        return list(self._topics)

    def facts(self, *, topic: Optional[str] = None, route: Optional[str] = None, kind: Optional[str] = FACT
              ) -> List[FactRecord]:
        return [f for f in self._facts
                if (kind is None or f.kind == kind) and (topic is None or f.topic == topic)
                and (route is None or f.id in self._route_facts.get(route, ()))]

    def conflict(self, *, conflict_id: str) -> ConflictRecord:
        return self._conflicts[conflict_id]

    def sources(self) -> List[SourceRecord]:
        return list(self._sources)

    def route_synonyms(self) -> Dict[str, Tuple[str, ...]]:
        return dict(self._synonyms)

    def route_labels(self) -> Dict[str, str]:
        return dict(self._labels)

    def fact_questions(self) -> Dict[str, Tuple[str, ...]]:
        return dict(self._questions)


@lru_cache(maxsize=4)
def engine_for(database_url: str) -> Engine:
    """One engine per database URL, created on first use."""
    return create_engine(database_url, future=True, pool_pre_ping=True)


def get_knowledge_base(*, database_url: Optional[str] = None) -> SqlKnowledgeBase:
    """The configured knowledge base (lazily connected)."""
    return SqlKnowledgeBase(engine=engine_for(database_url or get_settings().database_url))
