"""Which help a recognised crisis needs: decided explicitly from *who* is in danger and *what*
kind of danger it is, not left to whichever detector fired first.

* who: someone else when a pattern's subject is another person (``other_person`` patterns, or
  a third-person subject for patterns where it matters) or, without a pattern, when the
  classifier's most likely kind is ``other`` - unless the writer says the danger is theirs
  ("I've taken all my pills", "my husband is at work and I can't breathe"):
  ``PatternSet.writer_in_danger``, or frames their own danger as a friend's ("asking for a
  friend", "not me obviously"): ``PatternSet.proxy_framing``.
* what: a medical emergency (overdose, poisoning, a warning sign) when a pattern of those
  categories matched or, when no pattern matched, the classifier finds the medical kind more
  likely than suicidal thoughts; otherwise suicidal thoughts or self-harm.

The help: someone else -> ``other`` (call the emergency number for them and stay with them);
the writer's medical emergency -> ``medical`` (call the emergency number now); otherwise
``self`` (the crisis line and the emergency number).
"""
from __future__ import annotations

from typing import Optional, Sequence

from bot.crisis.classifier import Score
from bot.crisis.patterns import PatternHit, PatternSet

MEDICAL_CATEGORIES = frozenset({"overdose", "medical_warning"})


def someone_else(text: str, hits: Sequence[PatternHit], score: Optional[Score], patterns: PatternSet) -> bool:
    """``text``: the whole message, normalised."""
    if patterns.writer_in_danger(text) or patterns.proxy_framing(text):
        return False
    if hits:
        return any(hit.help == "other" for hit in hits)
    return score is not None and score.help == "other"


def medical(hits: Sequence[PatternHit], score: Optional[Score], text: str = "",
            patterns: Optional[PatternSet] = None) -> bool:
    if patterns is not None and patterns.writer_in_danger(text):
        return True  # "already swallowed them all", "I can't breathe": an emergency now
    if hits:  # the patterns say what it is (a topic word only when nothing else matched)
        said = [hit for hit in hits if not hit.rule.topic] or list(hits)
        return any(hit.rule.category in MEDICAL_CATEGORIES for hit in said)
    return score is not None and score.medical > score.self_


def choose_help(text: str, hits: Sequence[PatternHit], score: Optional[Score], patterns: PatternSet) -> str:
    if someone_else(text, hits, score, patterns):
        return "other"
    return "medical" if medical(hits, score, text, patterns) else "self"
