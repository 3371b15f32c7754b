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
    repeats: Tuple[str, ...] = ()  # other facts that make the same point (curated, both ways)

    def same_point(self, other: "FactRecord") -> bool:
        """Says what ``other`` says (curated in knowledge/facts as ``repeats``, either way round).
        Never the two sides of a disagreement, which are shown together."""
        if self.conflict and self.conflict == other.conflict:
            return False
        return other.id in self.repeats or self.id in other.repeats

    @property
    def is_shared(self) -> bool:
        """True when the fact is about both routes at once."""
        return set(self.routes) == set(ROUTES)
