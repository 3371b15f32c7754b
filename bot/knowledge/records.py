"""Plain, immutable records handed out by the knowledge base."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

ROUTES: Tuple[str, ...] = ("iv", "im")
FACT, VERDICT = "fact", "verdict"


@dataclass(frozen=True)
class SourceRecord:
    id: str
    short_name: str
    publisher: str
    title: str
    citation: str  # how a reply names the article, curated in knowledge/sources.yml


@dataclass(frozen=True)
class TopicRecord:
    id: str
    title: str
    keywords: Tuple[str, ...]


@dataclass(frozen=True)
class ConflictRecord:
    id: str
    topic: str
    note: str


@dataclass(frozen=True)
class FactRecord:
    id: str
    topic: str
    routes: Tuple[str, ...]
    text: str
    source: SourceRecord
    position: int
    conflict: Optional[str] = None
    restates: Tuple[str, ...] = ()  # the article sentences it restates ("klearwell:22")
    kind: str = FACT  # FACT, or VERDICT: the one-sentence direct answer a comparison leads with

    @property
    def is_shared(self) -> bool:
        """True when the fact is about both routes at once."""
        return set(self.routes) == set(ROUTES)
