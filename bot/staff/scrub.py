"""Phone numbers, e-mail addresses, web addresses and names out of a question before it is kept.

No spaCy model with a named-entity recogniser can be installed here, so names are found with
spaCy's ``Matcher`` on the project's own pipeline (its tokenizer and lemmas): a capitalised
word after "I'm", "this is", a title ("Dr", "Mrs") or a sign-off ("thanks, Anna", "- Tom"), and
any word but a stop word after "my name is", "name's" or "call me" (SMS names are often lower
case). Curly apostrophes count as straight ones. It errs on the side of removing: an ordinary
word that looks like a name ("I'm Worried") is replaced too; staff lose a word, never a name.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import List, Tuple

from spacy.language import Language
from spacy.matcher import Matcher

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
# Seven or more digits, allowing the separators people type ("+1 (555) 010-2233", "07700 900123").
PHONE = re.compile(r"(?<![\w])\+?\d(?:[\s().-]{0,3}\d){6,}(?![\w])")
# Digits that are not a phone number but still identify someone (dates of birth, ids): long runs.
LONG_NUMBER = re.compile(r"\b\d{5,}\b")

# Cues after which a capitalised word is taken for a name...
_NAME_CUES: List[List[dict]] = [
    [{"LOWER": "i"}, {"LOWER": {"IN": ["'m", "am", "m"]}}],
    [{"LOWER": "it"}, {"LOWER": "'s"}],
    [{"LOWER": "this"}, {"LOWER": "is"}],
    [{"LOWER": {"IN": ["dr", "mr", "mrs", "ms", "miss", "doctor", "nurse", "dr.", "mr.", "mrs.", "ms."]}},
     {"ORTH": ".", "OP": "?"}],
    [{"LOWER": {"IN": ["thanks", "thank", "regards", "cheers", "from"]}}, {"LOWER": "you", "OP": "?"},
     {"ORTH": ",", "OP": "?"}],
    [{"ORTH": {"IN": ["-", "--", "—"]}}],
]
# ...and strong cues, after which the next word is a name whatever its case ("my name is anna").
_STRONG_CUES: List[List[dict]] = [
    [{"LOWER": "my"}, {"LOWER": "name"}, {"LOWER": {"IN": ["is", "'s"]}}],
    [{"LOWER": "name"}, {"LOWER": "'s"}],
    [{"LOWER": "call"}, {"LOWER": "me"}],
]
_ANY_NAME = [{"IS_ALPHA": True, "IS_STOP": False}, {"IS_ALPHA": True, "IS_STOP": False, "IS_TITLE": True, "OP": "?"}]
_TITLE_NAME = [{"IS_TITLE": True}, {"IS_TITLE": True, "OP": "?"}]


@lru_cache(maxsize=1)
def _pipeline() -> Language:
    from bot.understanding.nlp import load_pipeline
    from bot.ops.settings import get_settings

    return load_pipeline(str(get_settings().spacy_pipeline_path))


@lru_cache(maxsize=1)
def _matcher() -> Matcher:
    nlp = _pipeline()
    matcher = Matcher(nlp.vocab)
    for number, cue in enumerate(_NAME_CUES):
        # The cue, then one or two capitalised words (a first name, maybe a surname).
        matcher.add(f"NAME_{number}", [cue + _TITLE_NAME], greedy="LONGEST")
    for number, cue in enumerate(_STRONG_CUES):
        matcher.add(f"STRONG_{number}", [cue + _ANY_NAME, cue + _TITLE_NAME], greedy="LONGEST")
    return matcher


_CUE_WORDS = {"i", "m", "dr.", "mr.", "mrs.", "ms.", "'m", "am", "im", "my", "name", "is", "'s", "this", "call", "me",
              "it", "dr", "mr", "mrs", "ms", "miss", "doctor", "nurse", "thanks", "thank", "you", "regards", "cheers", "from"}


def _name_spans(text: str) -> List[Tuple[int, int]]:
    """Character spans of the capitalised words that follow a name cue."""
    # Curly apostrophes (phones type "I’m") as straight ones: same length, so offsets still hold.
    doc = _pipeline().make_doc(text.replace("\u2019", "'"))
    spans = []
    for _, start, end in _matcher()(doc):
        names = [token for token in doc[start:end] if token.is_alpha and token.lower_ not in _CUE_WORDS]
        if names:
            spans.append((names[0].idx, names[-1].idx + len(names[-1].text)))
    return spans


def scrub(text: str) -> str:
    """``text`` with phone numbers, e-mail and web addresses, long numbers and names replaced."""
    text = EMAIL.sub("[email]", text)
    text = URL.sub("[link]", text)
    text = PHONE.sub("[phone]", text)
    text = LONG_NUMBER.sub("[number]", text)
    for start, end in sorted(_name_spans(text), reverse=True):
        text = text[:start] + "[name]" + text[end:]
    return text.strip()
