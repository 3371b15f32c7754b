"""Build the knowledge-base database from the curated files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.knowledge import schema
from bot.knowledge.curated import load_curated
from bot.knowledge.store import engine_for


@dataclass(frozen=True)
class BuildReport:
    database_url: str
    sources: int
    topics: int
    facts: int
    synonyms: int


def build_knowledge_base(*, knowledge_dir: Path, database_url: str) -> BuildReport:
    """Replace the database's contents with the curated knowledge."""
    curated = load_curated(knowledge_dir=knowledge_dir)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = engine_for(database_url)
    schema.Base.metadata.drop_all(engine)
    schema.Base.metadata.create_all(engine)
    with engine.begin() as connection:
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
