"""``python -m bot export-clinic``: the approved clinic answers as knowledge/clinic/<id>-<slug>.yml,
one file per answer (title, text, example questions, source, author, reviewer, review date), for
review in git or for a clinic's own records. The files are an export: the answers live in the
database, and a file removed or edited here changes nothing there."""
from __future__ import annotations

import re
from pathlib import Path
from typing import List

import yaml

from bot.clinic.store import ClinicAnswer, ClinicStore

SOURCE = "the clinic"


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "answer"


def as_document(answer: ClinicAnswer) -> dict:
    return {"id": answer.fact_id, "title": answer.title, "text": answer.text, "source": SOURCE,
            "author": answer.author, "reviewer": answer.reviewer,
            "reviewed": answer.reviewed_at.date().isoformat() if answer.reviewed_at else None,
            "revision": answer.revision, "questions": list(answer.examples)}


def export_answers(*, store: ClinicStore, directory: Path) -> List[Path]:
    """Write every approved answer; files of answers no longer approved are removed. The paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for answer in store.approved():
        path = directory / f"{answer.fact_id}-{slug(answer.title)}.yml"
        path.write_text(yaml.safe_dump(as_document(answer), sort_keys=False, allow_unicode=True, width=100),
                        encoding="utf-8")
        written.append(path)
    for stale in directory.glob("clinic-*.yml"):
        if stale not in written:
            stale.unlink()
    return written
