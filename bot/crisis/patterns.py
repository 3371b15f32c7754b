"""Curated crisis patterns (``patterns.yml``): loading, normalisation and matching."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Pattern, Tuple

import yaml

PATTERNS_FILE = Path(__file__).with_name("patterns.yml")
HELP_ORDER = ("other", "medical", "self")  # when several match, the first of these wins

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'", "\u201c": '"', "\u201d": '"'})
_REPEATS = re.compile(r"([a-z])\1{2,}")
_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+")


def normalise(text: str) -> str:
    """Lower case, accents and curly quotes straightened, 'sooooo' -> 'soo', whitespace squeezed."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_REPEATS.sub(r"\1\1", text).split())


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    help: str
    pattern: Pattern[str]
    reason: str
    subject_matters: bool = False
    # A word that names the subject ("suicide", "overdose", "self-harm"): also used to ask *about*
    # it, so alone it triggers only with the classifier's support; otherwise it is a concern.
    topic: bool = False


@dataclass(frozen=True)
class PatternHit:
    rule: Rule
    help: str  # the rule's help, or "other" when someone else is the one in danger
    span: Tuple[int, int]


class PatternSet:
    """The curated patterns, the harmless phrases blanked out before them, and the
    first/third-person markers that decide whose danger a match describes."""

    def __init__(self, path: Path = PATTERNS_FILE) -> None:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        rules: List[Rule] = []
        for category, block in data["categories"].items():
            for item in block["patterns"]:
                rules.append(Rule(item["id"], category, block["help"], re.compile(item["pattern"]), item["reason"],
                                  bool(block.get("subject_matters", False)), bool(item.get("topic", False))))
        ids = [r.id for r in rules]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{path}: pattern ids must be unique")
        self.rules: Tuple[Rule, ...] = tuple(rules)
        self.exclusions: Tuple[Tuple[str, Pattern[str], str], ...] = tuple(
            (e["id"], re.compile(e["pattern"]), e["reason"]) for e in data["exclusions"]
        )
        # Exclusions that are harmless as a crisis but still about the subject ("can you overdose
        # on the IM shot?", "I attempted years ago"): they keep the concern line.
        self._concern_kept = frozenset(e["id"] for e in data["exclusions"] if e.get("concern"))
        self.resolved: Tuple[Tuple[str, Pattern[str], str], ...] = tuple(
            (e["id"], re.compile(e["pattern"]), e["reason"]) for e in data["resolved"]
        )
        self._third = re.compile(data["third_person_subject"])
        self._first = re.compile(data["first_person_subject"])
        self._first_danger = re.compile(data["first_person_danger"])
        self._proxy = re.compile(data["proxy_framing"])

    def blank_exclusions(self, text: str) -> str:
        """``text`` (normalised) with every harmless phrase replaced by spaces of the same length."""
        for _, pattern, _ in self.exclusions:
            text = pattern.sub(lambda m: " " * len(m.group(0)), text)
        return text

    def _someone_else(self, text: str, start: int, end: int) -> bool:
        """True when the person last named before or inside the match, or right after it as its
        object ("can't wake him"), is someone else."""
        following = re.match(r"\s*\S+(\s+\S+)?", text[end:])
        window = text[:end] + (following.group(0) if following else "")
        third = [m.start() for m in self._third.finditer(window)]
        if not third:
            return False
        first = [m.start() for m in self._first.finditer(text[:start])]
        return not first or max(third) > max(first)

    def match(self, text: str) -> List[PatternHit]:
        """Every rule that matches ``text`` (normalised, exclusions blanked), strongest help first."""
        hits = []
        for rule in self.rules:
            found = rule.pattern.search(text)
            if found is None:
                continue
            help_ = rule.help
            if help_ != "other" and rule.subject_matters and self._someone_else(text, *found.span()):
                help_ = "other"
            hits.append(PatternHit(rule, help_, found.span()))
        return sorted(hits, key=lambda h: HELP_ORDER.index(h.help))

    def topic_mention(self, text: str) -> Optional[str]:
        """The id of a topic word (suicide, self-harm, overdose) in ``text`` (normalised), reading
        through the exclusions that keep a concern; None for idioms, quotes and media."""
        for eid, pattern, _ in self.exclusions:
            if eid not in self._concern_kept:
                text = pattern.sub(lambda m: " " * len(m.group(0)), text)
        return next((rule.id for rule in self.rules if rule.topic and rule.pattern.search(text)), None)

    def writer_in_danger(self, text: str) -> bool:
        """The writer says they took something or are in danger themselves ("I've taken all my
        pills", "I can't breathe"): the help is for them, whoever else the message names."""
        return self._first_danger.search(text) is not None

    def flagged_sentences(self, text: str, *, limit: int = 3, radius: int = 150) -> List[str]:
        """Up to ``limit`` passages of ``text`` (raw) around a pattern match, each the match and
        ``radius`` characters either side (within its sentence): how a crisis deep inside an
        overlong message still reaches the crisis layer when only a prefix of the message is
        read. Matches of the strongest kind of help come first, topic words last."""
        found: List[Tuple[bool, int, int, str, Tuple[int, int]]] = []
        for sentence in _SENTENCES.split(text):
            normalised = normalise(sentence)
            if not normalised:
                continue
            for hit in self.match(self.blank_exclusions(normalised)):
                found.append((hit.rule.topic, HELP_ORDER.index(hit.help), len(found), sentence, hit.span))
        passages: List[str] = []
        for _, _, _, sentence, (start, end) in sorted(found):
            # the normalised text is close to the raw one in length; widen to be safe
            window = sentence[max(0, start - radius):end + radius].strip()
            if window and window not in passages:
                passages.append(window)
            if len(passages) >= limit:
                break
        return passages

    def proxy_framing(self, text: str) -> bool:
        """The message frames the writer's own danger as someone else's ("asking for a friend")."""
        return self._proxy.search(text) is not None

    def says_resolved(self, text: str) -> Optional[str]:
        """The id of the first 'help has arrived / danger over' pattern in ``text`` (normalised)."""
        return next((rid for rid, pattern, _ in self.resolved if pattern.search(text)), None)

    def first(self, text: str) -> Optional[PatternHit]:
        hits = self.match(self.blank_exclusions(normalise(text)))
        return hits[0] if hits else None


@lru_cache(maxsize=2)
def load_patterns(path: Path = PATTERNS_FILE) -> PatternSet:
    return PatternSet(path)
