"""Build the knowledge-base database from the curated files."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url

from bot.clinic.schema import ClinicBase
from bot.clinic.store import copy_answers
from bot.knowledge import schema
from bot.knowledge.curated import Curated, load_curated
from bot.knowledge.store import engine_for


@dataclass(frozen=True)
class BuildReport:
    database_url: str
    sources: int
    topics: int
    facts: int
    synonyms: int


def build_knowledge_base(*, knowledge_dir: Path, database_url: str) -> BuildReport:
    """Replace the database's contents with the curated knowledge.

    A SQLite file is built beside the old one and swapped in (``os.replace``), so a running
    assistant never reads half-built or dropped tables: its open connections keep the old file,
    new ones get the new; the clinic answers (bot/clinic/, written by staff, not curated files)
    are copied from the old file into the new one first. Another database (the cluster's
    PostgreSQL) is rebuilt in place in one transaction, so readers see the old tables until the
    new ones are committed: only the curated tables are dropped and recreated there, never the
    clinic answers'."""
    curated = load_curated(knowledge_dir=knowledge_dir)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        target = Path(url.database)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.building")
        temporary.unlink(missing_ok=True)
        engine = create_engine(str(url.set(database=str(temporary))), future=True)
        try:
            report = _write(curated, engine, database_url)
            if target.exists():
                copy_answers(source=engine_for(database_url), target=engine)
        finally:
            engine.dispose()
        os.replace(temporary, target)
        engine_for(database_url).dispose()  # pooled connections of this process: to the new file
        return report
    return _write(curated, engine_for(database_url), database_url)


def _write(curated: Curated, engine: Engine, database_url: str) -> BuildReport:
    # One transaction, the tables' drop and creation included (PostgreSQL's DDL is transactional):
    # a running assistant reads the old tables until the new ones are complete and committed.
    with engine.begin() as connection:
        schema.Base.metadata.drop_all(connection)
        schema.Base.metadata.create_all(connection)
        ClinicBase.metadata.create_all(connection)  # the clinic answers' tables, when missing (never dropped)
        connection.execute(
            schema.Source.__table__.insert(),
            [
                dict(id=s.id, short_name=s.short_name, publisher=s.publisher, title=s.title, citation=s.citation)
                for s in curated.sources
            ],
        )
        connection.execute(
            schema.Topic.__table__.insert(),
            [
                dict(id=t.id, title=t.title, keywords=" ".join(t.keywords), position=t.position)
                for t in curated.topics
            ],
        )
        conflicts = [dict(id=cid, topic_id=t.id, note=note) for t in curated.topics for cid, note in t.conflicts]
        if conflicts:
            connection.execute(schema.Conflict.__table__.insert(), conflicts)
        connection.execute(
            schema.Fact.__table__.insert(),
            [
                dict(
                    id=f.id,
                    topic_id=f.topic,
                    source_id=f.source,
                    conflict_id=f.conflict,
                    text=f.text,
                    position=f.position,
                    kind=f.kind,
                )
                for f in curated.facts
            ],
        )
        connection.execute(
            schema.FactSentence.__table__.insert(),
            [dict(fact_id=f.id, sentence_id=s) for f in curated.facts for s in f.restates],
        )
        repeats = {(f.id, other) for f in curated.facts for other in f.repeats}
        repeats |= {(other, fact) for fact, other in repeats}  # both ways
        if repeats:
            connection.execute(schema.FactRepeat.__table__.insert(),
                               [dict(fact_id=fact, other_id=other) for fact, other in sorted(repeats)])
        connection.execute(
            schema.FactRoute.__table__.insert(),
            [dict(fact_id=f.id, route=r) for f in curated.facts for r in f.routes],
        )
        questions = [dict(fact_id=f.id, text=q) for f in curated.facts for q in f.questions]
        if questions:
            connection.execute(schema.FactQuestion.__table__.insert(), questions)
        synonyms = [
            dict(route=r.id, label=r.label, phrase=phrase)
            for r in curated.routes
            for phrase in r.synonyms
        ]
        connection.execute(schema.RouteSynonym.__table__.insert(), synonyms)
    return BuildReport(
        database_url=database_url,
        sources=len(curated.sources),
        topics=len(curated.topics),
        facts=len(curated.facts),
        synonyms=len(synonyms),
    )
