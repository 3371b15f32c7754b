"""The assistant's runtime data folder (DATA_DIR, ``var/`` by default).

    var/conversations.db   Rasa's tracker store (SQLite, mode 0600): conversations survive restarts
    var/log/               one log file per process (JSON lines, no patient text)
    var/run/               the supervisor's configuration and control socket
    var/secrets/           keys generated on first use (mode 0600) when not given in the environment
    var/cluster/           the cluster profile's own PostgreSQL and Redis (bot/ops/cluster.py)

Everything here is created owner-only: the folder 0700, files 0600 (with the cluster profile
run as root, ``var/`` and ``var/cluster/`` are 0711 so that PostgreSQL and Redis, each as its
own system user, reach their own 0700 folders; nothing else is readable).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from bot.ops.settings import Settings


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty and owner-only if it does not exist; tighten it if it does."""
    private_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    return path


def turn_sqlite_engine(url: str, **options: Any) -> Any:
    """The engine of a SQLite database written on every turn (the conversations, the staff
    records): SQLite's write-ahead log, synced to disk at its checkpoints rather than at every
    commit, and connections kept open in a pool (SQLAlchemy 1.4 opens and closes one per session
    for a SQLite file, and closing the last connection to a write-ahead log checkpoints it: a disk
    flush again). A commit then costs microseconds instead of about 10 ms here, on the event loop
    of every patient's turn; a crash of the assistant loses nothing, a power cut at most the
    latest turns. The log files (``-wal``, ``-shm``) take the database file's owner-only mode.
    Not for the knowledge base, which its build replaces whole (open connections would keep
    reading the old file, and a stale log must never meet a new one)."""
    import sqlalchemy as sa
    from sqlalchemy import event
    from sqlalchemy.pool import QueuePool

    engine = sa.create_engine(url, poolclass=QueuePool, pool_size=5, max_overflow=10,
                              connect_args={"check_same_thread": False}, **options)

    @event.listens_for(engine, "connect")
    def _write_ahead(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def prepare(settings: Settings, *, tracker_store_file: bool = True) -> None:
    """The data folder, its log and run folders, and (embedded profile) the tracker store file,
    all owner-only."""
    private_dir(settings.data_dir)
    private_dir(settings.log_dir)
    private_dir(settings.data_dir / "run")
    if tracker_store_file:
        private_file(settings.tracker_store_path)


def secret(settings: Settings, name: str) -> str:
    """A key generated once and kept in DATA_DIR/secrets/<name>.key (owner-only)."""
    path = settings.data_dir / "secrets" / f"{name}.key"
    private_dir(path.parent)
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip()
