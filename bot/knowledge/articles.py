"""The source articles, split into numbered sentences.

Each fact in ``knowledge/facts/`` names the article sentences it restates
(``restates: [klearwell:12]``); a test checks that every sentence of both
articles is restated by at least one fact, and the evaluation sets name the
sentences a correct answer must draw on. The ids come from this splitter, so it
is deliberately simple and stable: paragraphs are lines, sentences end at
``. ! ?`` followed by a capital (a missing space after the full stop, as in
"aims.IV", still splits; "Dr." does not), and short lines without a full stop
are headings.

The articles' own text is read from ``../shared/seeds`` at run time and never
copied into the project.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from bot.ops.settings import PROJECT_ROOT

SEEDS_DIR = PROJECT_ROOT.parent / "shared" / "seeds"

# A sentence ends at . ! ? before a capital, with or without a space ("aims.IV"), but not after a title.
_SENTENCE_END = re.compile(r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)"
                           r"(?:(?<=[.!?])\s+(?=[A-Z“‘\"(])|(?<=[a-z][.!?])(?=[A-Z]))")
_HEADING_MAX_WORDS = 8


@dataclass(frozen=True)
class Sentence:
    id: str  # "<source id>:<number>", numbered from 1 in reading order
    source: str
    number: int
    text: str
    heading: bool


def split_article(text: str, *, source: str) -> Tuple[Sentence, ...]:
    sentences: List[Sentence] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        heading = not line.endswith((".", "!", "?", ":")) and len(line.split()) <= _HEADING_MAX_WORDS
        for part in ([line] if heading else _SENTENCE_END.split(line)):
            part = part.strip()
            if part:
                number = len(sentences) + 1
                sentences.append(Sentence(f"{source}:{number}", source, number, part, heading))
    return tuple(sentences)


class ArticlesMissing(FileNotFoundError):
    """The source articles are not where the project expects them (``../shared/seeds``)."""


def seed_files(knowledge_dir: Path) -> Dict[str, Path]:
    """Source id -> its article file, from knowledge/sources.yml."""
    data = yaml.safe_load((knowledge_dir / "sources.yml").read_text(encoding="utf-8"))
    return {s["id"]: SEEDS_DIR / s["seed_file"] for s in data["sources"]}


@lru_cache(maxsize=4)
def article_sentences(knowledge_dir: Path = PROJECT_ROOT / "knowledge") -> Tuple[Sentence, ...]:
    """Every sentence of every source article, in source order."""
    found: List[Sentence] = []
    for source, path in seed_files(knowledge_dir).items():
        if not path.is_file():
            raise ArticlesMissing(f"the source article {path.name} is not in {path.parent} (the project reads "
                                  "its two articles from ../shared/seeds, next to the project folder)")
        found.extend(split_article(path.read_text(encoding="utf-8"), source=source))
    return tuple(found)


def main() -> None:
    """Print the numbered sentences (for curators and evaluation authors)."""
    for sentence in article_sentences():
        mark = " [heading]" if sentence.heading else ""
        print(f"{sentence.id}{mark}  {sentence.text}")


if __name__ == "__main__":
    main()
