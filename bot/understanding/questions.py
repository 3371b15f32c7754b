"""Finding the questions in a patient's message.

Patients write a story and then ask, or ask two things at once ("how long does the drip
take, and is the shot safer?"). The whole message is understood as usual; in addition each
question in it is understood on its own (``QuestionParts`` and ``QuestionChoice`` in
bot/rasa/components.py: the parts go through the same NLU graph as the whole message, with
the graph's own spaCy doc), so the assistant can answer the question that was asked, not the
story around it, and answer up to two topics in one reply.

A part is a sentence (spaCy's sentencizer, from the project's pipeline) that asks something,
or one of two questions joined by "and"/"also"/"plus" in one sentence.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence

MAX_PARTS = 3
# A sentence that starts with one of these asks something, even without a question mark.
QUESTION_WORDS = frozenset({
    "how", "what", "whats", "what's", "when", "which", "who", "whos", "who's", "why", "where", "is", "are", "can",
    "could", "does", "do", "did", "will", "would", "should", "shall", "may", "might", "any", "anything", "has",
    "have", "was", "were", "isnt", "isn't", "arent", "aren't", "dont", "don't", "doesnt", "doesn't", "tell",
    "explain", "wondering", "wonder", "curious",
})
_JOINED = re.compile(
    r"\s*(?:,\s*)?\b(?:and|also|plus|&)\s+(?:also\s+)?"
    r"(?=(?:how|what|what's|whats|when|which|who|why|where|is|are|can|could|does|do|will|would|should)\b)",
    re.I,
)
# "...is she right? and roughly when does it peak": the sentencizer keeps a lower-case follow-on
# in the sentence of the question before it; a question mark and "and"/"also"/"plus" end that
# question all the same.
_AFTER_QUESTION_MARK = re.compile(r"(?<=\?)\s+(?=(?:and|also|plus|&)\s)", re.I)
_WORD = re.compile(r"[a-z']+")
_FOLLOW_ON = {"and", "also", "plus"}
CLAIM_CHECK_WORDS = 5
_CLAIM_WORDS = {"that", "this", "true", "right", "correct", "fair", "accurate", "so"}
_LEADING = {"and", "so", "also", "plus", "but", "ok", "okay", "oh", "right", "then", "anyway", "well", "sorry"}


def _opening_words(text: str) -> List[str]:
    """The words after any "and", "so", "also"... that open a follow-on question."""
    words = _WORD.findall(text.lower())
    while words and words[0] in _LEADING:
        words = words[1:]
    return words


def _first_word(text: str) -> str:
    words = _opening_words(text)
    return words[0] if words else ""


def is_question(text: str) -> bool:
    stripped = text.strip()
    return stripped.endswith("?") or _first_word(stripped) in QUESTION_WORDS


def asks_soon(text: str) -> bool:
    """A follow-on that opens with "and"/"also"/"plus" and asks within its next words ("and
    roughly when does it peak", "and in general is it safe")."""
    first = _WORD.match(text.strip().lower())
    return first is not None and first.group() in _FOLLOW_ON and any(
        word in QUESTION_WORDS for word in _opening_words(text)[:3])


def checks_a_claim(text: str) -> bool:
    """A short question about what was just said ("Is that true?", "Fair point?", "Is true
    this?"): it is understood together with the sentence before it."""
    words = _WORD.findall(text.lower())
    return len(words) <= CLAIM_CHECK_WORDS and any(word in _CLAIM_WORDS for word in words)


def split_joined(sentence: str) -> List[str]:
    """'how long is IV and is IM safe?' -> ['how long is IV', 'is IM safe?']"""
    pieces = [p.strip(" ,") for p in _JOINED.split(sentence) if p and p.strip(" ,")]
    return pieces if len(pieces) > 1 and all(len(p.split()) >= 3 for p in pieces) else [sentence]


def question_parts(sentences: Sequence[str]) -> List[str]:
    """The questions of a message, given its sentences; [] when the message is one question
    (or asks nothing), so that it is understood whole as before."""
    sentences = [s.strip() for s in sentences if s and s.strip()]
    parts: List[str] = []
    for number, sentence in enumerate(sentences):
        for piece in _AFTER_QUESTION_MARK.split(sentence):
            if not (is_question(piece) or asks_soon(piece)):
                continue
            if number and checks_a_claim(piece) and not is_question(sentences[number - 1]):
                parts.append(f"{sentences[number - 1]} {piece}")  # "He says IM is faster. Is that true?"
            else:
                parts.extend(split_joined(piece))
    if len(sentences) == 1 and len(parts) <= 1:
        return []
    return parts[:MAX_PARTS]


def part_summary(text: str, parse: Dict[str, Any]) -> Dict[str, Any]:
    """What the assistant keeps of one part's understanding (in the parse data, and the tracker)."""
    intent = parse.get("intent") or {}
    summary = {
        "text": text,
        "intent": {"name": intent.get("name"), "confidence": round(float(intent.get("confidence") or 0.0), 4)},
        "entities": [e for e in parse.get("entities") or [] if e.get("entity") == "route"],
    }
    if parse.get("search_terms") is not None:
        summary["search_terms"] = list(parse["search_terms"])
    return summary


ADVICE, DECLINE = "personal_advice", "out_of_scope"
SURE = 0.3


def main_intent(whole: Dict[str, Any], parts: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The intent a message with questions is answered by, or None to keep the whole message's:

    * a question about the patient's own care, asked anywhere, gets the referral (with general
      facts for the rest), and so does a message that NLU reads as such as a whole - the story
      ("I'm on lithium...") often carries what makes the question personal;
    * a message NLU reads as a question about the treatment keeps that reading (measured on the
      dev set: the whole message, story included, names the topic more often than the question
      sentence alone), unless a question in it is more surely one the articles do not cover;
    * otherwise (small talk, unsure) the most confident question about the treatment in it,
      or else a question the articles do not cover gets the honest decline.
    """
    whole_intent = whole.get("intent") or {}
    sure = [p["intent"] for p in parts if p["intent"].get("confidence", 0.0) >= SURE]
    if whole_intent.get("name") == ADVICE and whole_intent.get("confidence", 0.0) >= SURE:
        return None
    by_name = lambda prefix: [i for i in sure if (i.get("name") or "").startswith(prefix)]  # noqa: E731
    if (whole_intent.get("name") or "").startswith("ask_"):
        more_sure = [i for i in by_name(DECLINE) if i.get("confidence", 0.0) > whole_intent.get("confidence", 0.0)]
        topic_groups = [more_sure]
    else:
        topic_groups = [by_name("ask_"), by_name(DECLINE)]
    for group in [by_name(ADVICE)] + topic_groups:
        if group:
            best = max(group, key=lambda intent: intent.get("confidence", 0.0))
            return None if best.get("name") == whole_intent.get("name") else dict(best)
    return None
