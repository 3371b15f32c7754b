"""Reading and validating the curated YAML files in ``knowledge/``."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from bot.knowledge.records import FACT, ROUTES, VERDICT


class CurationError(ValueError):
    """The curated files are inconsistent; the message says where."""


@dataclass(frozen=True)
class CuratedSource:
    id: str
    short_name: str
    publisher: str
    title: str
    citation: str


@dataclass(frozen=True)
class CuratedFact:
    id: str
    topic: str
    routes: Tuple[str, ...]
    source: str
    text: str
    position: int
    conflict: Optional[str]
    restates: Tuple[str, ...] = ()
    kind: str = FACT
    # Other facts that make the same point, usually from the other article ("both articles say
    # the IM goes into the upper arm"): a reply says it once.
    repeats: Tuple[str, ...] = ()
    # Example questions this fact answers (knowledge/questions/<topic>.yml): what the fact ranker
    # learns from (bot/answers/ranker.py).
    questions: Tuple[str, ...] = ()


@dataclass(frozen=True)
class CuratedTopic:
    id: str
    title: str
    keywords: Tuple[str, ...]
    position: int
    conflicts: Tuple[Tuple[str, str], ...]  # (id, note)


@dataclass(frozen=True)
class CuratedRoute:
    id: str
    label: str
    synonyms: Tuple[str, ...]


def _route_phrases(route: dict) -> Tuple[str, ...]:
    """Plain synonyms, plus each ambiguous word paired with the words that make it a route."""
    phrases = [str(x).lower() for x in route["synonyms"]]
    for word, context in (route.get("ambiguous") or {}).items():
        phrases += [f"{before} {word}" for before in context.get("before", ())]
        phrases += [f"{word} {after}" for after in context.get("after", ())]
    return tuple(dict.fromkeys(phrases))


@dataclass(frozen=True)
class Curated:
    sources: Tuple[CuratedSource, ...]
    topics: Tuple[CuratedTopic, ...]
    facts: Tuple[CuratedFact, ...]
    routes: Tuple[CuratedRoute, ...]


def _read(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise CurationError(f"{path}: expected a mapping at the top level")
    return data


def load_curated(*, knowledge_dir: Path) -> Curated:
    """Load every curated file and check that the pieces fit together."""
    sources = tuple(
        CuratedSource(
            id=s["id"],
            short_name=s["short_name"],
            publisher=s["publisher"],
            title=s["title"],
            citation=s["citation"],
        )
        for s in _read(knowledge_dir / "sources.yml")["sources"]
    )
    routes = tuple(
        CuratedRoute(id=r["id"], label=r["label"], synonyms=_route_phrases(r))
        for r in _read(knowledge_dir / "routes.yml")["routes"]
    )
    topics: List[CuratedTopic] = []
    facts: List[CuratedFact] = []
    for position, path in enumerate(sorted((knowledge_dir / "facts").glob("*.yml"))):
        data = _read(path)
        topic_id = data["topic"]
        if topic_id != path.stem:
            raise CurationError(f"{path}: topic '{topic_id}' must match the file name")
        conflicts = tuple((c["id"], c["note"]) for c in data.get("conflicts") or ())
        topics.append(
            CuratedTopic(
                id=topic_id,
                title=data["title"],
                keywords=tuple(str(k).lower() for k in data.get("keywords") or ()),
                position=position,
                conflicts=conflicts,
            )
        )
        questions_path = knowledge_dir / "questions" / path.name
        questions = (_read(questions_path).get("questions") or {}) if questions_path.exists() else {}
        known = {f["id"] for f in data["facts"]} | ({data["verdict"]["id"]} if data.get("verdict") else set())
        unknown = sorted(set(questions) - known)
        if unknown:
            raise CurationError(f"{questions_path}: questions for unknown facts {unknown}")
        entries = [(fact, FACT) for fact in data["facts"]]
        if data.get("verdict"):
            entries.append((data["verdict"], VERDICT))
        for index, (fact, kind) in enumerate(entries):
            facts.append(
                CuratedFact(
                    id=fact["id"],
                    topic=topic_id,
                    routes=tuple(fact["routes"]),
                    source=fact["source"],
                    text=" ".join(str(fact["text"]).split()),
                    position=index,
                    conflict=fact.get("conflict"),
                    restates=tuple(str(s) for s in fact.get("restates") or ()),
                    kind=kind,
                    repeats=tuple(str(r) for r in fact.get("repeats") or ()),
                    questions=tuple(" ".join(str(q).split()) for q in questions.get(fact["id"]) or ()),
                )
            )
    curated = Curated(tuple(sources), tuple(topics), tuple(facts), routes)
    validate(curated)
    return curated


# A fact is shown alone or beside any other fact, in whatever order relevance puts it, so it must not
# lean on a sentence before it ("He founded...", "That is still high...", "The cannula connects...").
# Openings that point back to something said before (compared on whole words, case-insensitive):
BACK_REFERENCE_OPENINGS = (
    "he", "she", "it", "its", "they", "their", "them", "his", "her", "this", "that", "these", "those",
    "such", "both", "the latter", "the former", "the same", "the other", "the two", "the cannula",
    "the injection", "the infusion", "the drip", "the dose", "the session", "the article", "the aim",
    "the choice", "the longer", "the shorter", "also", "still", "as well", "too", "likewise", "similarly",
    "in addition", "moreover", "furthermore", "however", "therefore", "thus", "hence", "then", "so",
    "and", "but", "yet", "or", "because it", "because they", "because this", "because that",
    "because these", "because those", "because of this", "because of that", "because of it",
    "for this reason", "for that reason", "as a result", "in turn", "even so", "otherwise", "instead",
)
_OPENING = re.compile(
    r"^[\s\"'\u2018\u201c(]*(" + "|".join(re.escape(p) for p in sorted(BACK_REFERENCE_OPENINGS, key=len, reverse=True))
    + r")(?![\w-])",
    re.IGNORECASE,
)
# Words that compare with, or add to, a fact the reader has not seen ("IM is also safe", "still high"):
# "as well as" joins two things inside the sentence and is fine.
_LEANING_WORDS = re.compile(r"\b(also|still|likewise|as well(?! as\b))\b", re.IGNORECASE)


def back_reference(text: str) -> Optional[str]:
    """The words by which ``text`` leans on a sentence before it, or None when it stands alone."""
    opening = _OPENING.match(text)
    if opening:
        return opening.group(1)
    leaning = _LEANING_WORDS.search(text)
    return leaning.group(1) if leaning else None


def check_stands_alone(fact: "CuratedFact") -> None:
    """Raise CurationError when ``fact`` cannot be understood without the fact before it."""
    words = back_reference(fact.text)
    if words is None:
        return
    where = "opens with" if _OPENING.match(fact.text) else "uses"
    raise CurationError(
        f"fact '{fact.id}' {where} '{words}', which leans on a sentence before it: facts are shown alone "
        "and in any order, so say what it is about (name the route, person or thing) instead"
    )


def validate(curated: Curated) -> None:
    """Raise CurationError on anything that would make a wrong or unsourced answer."""
    from bot.knowledge.articles import article_sentences

    source_ids = {s.id for s in curated.sources}
    sentence_ids = {s.id for s in article_sentences() if not s.heading}
    route_ids = {r.id for r in curated.routes}
    if route_ids != set(ROUTES):
        raise CurationError(f"routes.yml must define exactly {ROUTES}, found {sorted(route_ids)}")
    seen: set = set()
    conflict_members: Dict[str, List[CuratedFact]] = {}
    declared = {cid: topic.id for topic in curated.topics for cid, _ in topic.conflicts}
    for fact in curated.facts:
        if fact.id in seen:
            raise CurationError(f"duplicate fact id '{fact.id}'")
        seen.add(fact.id)
        if fact.source not in source_ids:
            raise CurationError(f"fact '{fact.id}' names unknown source '{fact.source}'")
        if not fact.routes or not set(fact.routes) <= route_ids:
            raise CurationError(f"fact '{fact.id}' has invalid routes {fact.routes}")
        if not fact.text:
            raise CurationError(f"fact '{fact.id}' has no text")
        check_stands_alone(fact)
        if not fact.restates:
            raise CurationError(f"fact '{fact.id}' names no article sentence it restates ('restates')")
        unknown = [s for s in fact.restates if s not in sentence_ids]
        if unknown:
            raise CurationError(f"fact '{fact.id}' restates unknown article sentences {unknown}")
        if not {s.split(":")[0] for s in fact.restates} <= {fact.source}:
            raise CurationError(f"fact '{fact.id}' restates a sentence of another source than '{fact.source}'")
        if fact.conflict:
            if declared.get(fact.conflict) != fact.topic:
                raise CurationError(
                    f"fact '{fact.id}' names conflict '{fact.conflict}' not declared in its topic"
                )
            conflict_members.setdefault(fact.conflict, []).append(fact)
    for fact in curated.facts:
        unknown = [r for r in fact.repeats if r not in seen or r == fact.id]
        if unknown:
            raise CurationError(f"fact '{fact.id}' repeats unknown facts {unknown}")
    for conflict_id in declared:
        members = conflict_members.get(conflict_id, [])
        if len({m.source for m in members}) < 2:
            raise CurationError(
                f"conflict '{conflict_id}' needs facts from at least two sources"
            )
