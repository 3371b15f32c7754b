"""The project's own spaCy pipeline.

No pretrained spaCy model can be downloaded here, so the project builds its own:
blank English + a rule-based sentencizer + the lookup lemmatizer (tables from
spacy-lookups-data) + an entity ruler whose ROUTE patterns are generated from the knowledge base's route
synonyms. Rasa's SpacyNLP loads it by path (see config.yml).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable, List, Mapping, Sequence

import spacy
from spacy.language import Language
from spacy.tokens import Doc

ROUTE_LABEL = "ROUTE"
# spaCy's English stop list holds words that carry meaning here ("side effects", "how long",
# "first time", "wears off"); they stay searchable.
MEANINGFUL_STOP_WORDS = frozenset({"side", "long", "first", "before", "after", "off", "full", "down", "back"})


def doc_search_terms(doc: Doc) -> List[str]:
    """Lemmas the knowledge-base search matches on, from a parse of the lower-cased text:
    content words, route words left out. The NLU graph computes them from its own doc
    (``bot.rasa.components.SearchTerms``), so the action server need not parse the message again."""
    route_tokens = {t.i for ent in doc.ents if ent.label_ == ROUTE_LABEL for t in ent}
    return [
        (t.lemma_ or t.text).lower()
        for t in doc
        if t.i not in route_tokens
        and (t.is_alpha or t.like_num)
        and (not t.is_stop or t.lower_ in MEANINGFUL_STOP_WORDS)
    ]


def route_patterns(nlp: Language, synonyms: Mapping[str, Sequence[str]]) -> List[dict]:
    """Token patterns (case-insensitive) for every route synonym; the pattern id is the route."""
    patterns = []
    for route, phrases in synonyms.items():
        for phrase in phrases:
            tokens = [t.text for t in nlp.make_doc(phrase.lower())]
            patterns.append({"label": ROUTE_LABEL, "id": route, "pattern": [{"LOWER": t} for t in tokens]})
    return patterns


def build_pipeline(*, synonyms: Mapping[str, Sequence[str]], output: Path) -> Path:
    """Create the pipeline and save it where Rasa's SpacyNLP will load it."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")  # rule-based sentence boundaries: the crisis layer reads each sentence
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()  # loads the lookup tables; it would also clear an entity ruler's patterns
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": None, "overwrite_ents": True})
    ruler.add_patterns(route_patterns(nlp, synonyms))
    nlp.meta["name"] = "ketamine_assistant_pipeline"
    nlp.meta["description"] = "Blank English + sentencizer + lookup lemmatizer + ROUTE entity ruler from the knowledge base"
    output.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output)
    return output


@lru_cache(maxsize=2)
def load_pipeline(path: str) -> Language:
    """Load (once per process) the pipeline built by ``build_pipeline``."""
    if not Path(path, "config.cfg").exists():
        raise FileNotFoundError(f"No spaCy pipeline at {path}; run `python -m bot build` first.")
    return spacy.load(path)


def lemmas(nlp: Language, text: str, *, drop_stop_words: bool = True) -> List[str]:
    """Lower-cased lemmas of the alphanumeric tokens of ``text``."""
    doc = nlp(text.lower())
    return [
        token.lemma_.lower() or token.text
        for token in doc
        if (token.is_alpha or token.like_num) and not (drop_stop_words and token.is_stop)
    ]


def routes_in(nlp: Language, text: str) -> List[str]:
    """Route ids mentioned in ``text``, in order of mention, without repeats."""
    return list(dict.fromkeys(route for route, _, _ in route_spans(nlp(text.lower()))))


def route_spans(doc) -> List[tuple]:
    """(route, start token, end token) for each route mention.

    Adjacent spans of the same route merge ("the IM" + "shot"), and stop words
    at the edges ("the drip", "and im") are trimmed, so the span is the route
    words themselves.
    """
    spans: List[list] = []
    for ent in doc.ents:
        if ent.label_ != ROUTE_LABEL or not ent.ent_id_:
            continue
        if spans and spans[-1][0] == ent.ent_id_ and spans[-1][2] == ent.start:
            spans[-1][2] = ent.end
        else:
            spans.append([ent.ent_id_, ent.start, ent.end])
    trimmed = []
    for route, start, end in spans:
        # Only whole words: the tokenizer splits "im" into "i" + "m", which must stay together.
        while end - start > 1 and doc[start].is_stop and doc[start].whitespace_:
            start += 1
        while end - start > 1 and doc[end - 1].is_stop and doc[end - 2].whitespace_:
            end -= 1
        trimmed.append((route, start, end))
    return trimmed


def iter_route_entities(doc) -> Iterable[dict]:
    """Rasa-style entity dicts for the route mentions of a processed doc."""
    for route, start, end in route_spans(doc):
        span = doc[start:end]
        yield {
            "entity": "route",
            "value": route,
            "start": span.start_char,
            "end": span.end_char,
            "confidence_entity": 1.0,
        }
