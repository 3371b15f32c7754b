"""A knowledge-base rebuild in the cluster's PostgreSQL is one transaction: a reader in another
connection sees every fact before, during and after it - never missing or half-built tables."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.servers


def test_a_reader_never_sees_the_knowledge_tables_missing_during_a_rebuild(running_cluster):
    from bot.knowledge.build import build_knowledge_base
    from bot.ops.settings import PROJECT_ROOT

    reader = create_engine(running_cluster.database_url, future=True)
    with reader.connect() as connection:
        facts = connection.execute(text("SELECT count(*) FROM facts")).scalar_one()
    assert facts > 50
    seen, errors = [], []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                with reader.connect() as connection:
                    seen.append(connection.execute(text("SELECT count(*) FROM facts")).scalar_one())
            except Exception as error:  # noqa: BLE001 - a missing table is what this test looks for
                errors.append(type(error).__name__)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for _ in range(3):
            build_knowledge_base(knowledge_dir=PROJECT_ROOT / "knowledge", database_url=running_cluster.database_url)
    finally:
        done.set()
        thread.join(timeout=60)
        reader.dispose()
    assert not errors and len(seen) > 3 and set(seen) == {facts}, (errors[:3], sorted(set(seen)))
