"""Combining the two detectors, per message and over a short stretch of the conversation."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, List, Optional, Sequence

from bot.crisis.classifier import CrisisClassifier, Score
from bot.crisis.help import choose_help
from bot.crisis.patterns import HELP_ORDER, PatternSet, normalise

HELP_INTENTS = {"self": "crisis_self", "medical": "crisis_medical", "other": "crisis_other"}
CRISIS_INTENTS = frozenset(HELP_INTENTS.values())


@dataclass(frozen=True)
class Detection:
    """What the crisis layer decided about one message, and why (kept in the tracker)."""

    crisis: bool
    help: Optional[str] = None  # self | medical | other
    detector: Optional[str] = None  # pattern | classifier | conversation
    pattern: Optional[str] = None  # id of the curated pattern that matched
    category: Optional[str] = None  # the pattern's category
    score: float = 0.0  # classifier P(crisis): the highest over the message and its sentences
    threshold: float = 0.0  # what the score had to reach in this turn
    sentence: Optional[int] = None  # 0 = the whole message, n = its n-th sentence
    recent: float = 0.0  # the strongest risk in the previous turns that count
    resolved: Optional[str] = None  # the message says help has arrived (pattern id)
    # Not a crisis, but the message names suicide, self-harm or overdose as a subject: its answer
    # carries one line with the crisis line (pattern id of the topic word).
    concern: Optional[str] = None

    @property
    def intent(self) -> Optional[str]:
        return HELP_INTENTS.get(self.help or "") if self.crisis else None

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Optional[Dict[str, Any]]) -> Optional["Detection"]:
        if not isinstance(data, dict):
            return None
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known) if "crisis" in known else None

    def explain(self) -> str:
        """One line for staff: which detector fired, or why none did."""
        where = "" if not self.sentence else f" in sentence {self.sentence}"
        if not self.crisis:
            context = f"; recent risk {self.recent:.2f}" if self.recent else ""
            concern = (f"; concern: the topic word {self.concern} without the classifier's support"
                       f" (the answer carries the crisis line)" if self.concern else "")
            return (f"no crisis: no pattern matched, classifier {self.score:.2f} < {self.threshold:.2f}"
                    f"{context}{concern}")
        if self.detector == "pattern":
            return f"{self.help}: pattern {self.pattern} ({self.category}){where}; classifier {self.score:.2f}"
        if self.detector == "classifier":
            return f"{self.help}: classifier {self.score:.2f} >= {self.threshold:.2f}{where}"
        return (f"{self.help}: conversation - a crisis or risk ({self.recent:.2f}) in the last turns,"
                f" this turn {self.score:.2f}")


class CrisisDetector:
    """Patterns and classifier over the whole message and each sentence; either one triggers.

    ``threshold``: the classifier probability for the whole message that makes it a crisis on
    its own; ``sentence_threshold``: the (higher) bar for one sentence of a longer message,
    read out of its context, which counts only when the whole message reaches
    ``sentence_support`` (one sentence alone - "I just nodded along" - is easily misread; a
    buried "I think I took my tablets three times" also raises the whole message).

    The conversation-level memory (``in_context``) holds a crisis that was recognised
    directly (by a pattern or the classifier) for the next ``context_turns`` user turns:
    the very next turn, whatever it says ("anyway, is it expensive?"), and later ones unless
    they are clear questions about the treatment with a classifier score below
    ``context_threshold``. A turn saying help has arrived releases it. And two turns in a row
    at ``concern`` or more trigger, for a crisis that emerges slowly.

    A topic word ("suicide", "overdose", "self-harm": patterns marked ``topic``) is also how
    people ask *about* the subject; it triggers with a classifier score of ``topic_threshold`` or
    more, and otherwise marks the message as a ``concern``: answered, with the crisis line.
    Which help a crisis needs is decided from who and what (``bot/crisis/help.py``).
    """

    def __init__(self, *, patterns: PatternSet, classifier: Optional[CrisisClassifier], threshold: float = 0.6,
                 sentence_threshold: float = 0.85, sentence_support: float = 0.45, context_threshold: float = 0.15,
                 concern: float = 0.3, context_turns: int = 2, topic_threshold: float = 0.3) -> None:
        self.patterns = patterns
        self.classifier = classifier
        self.threshold = threshold
        self.sentence_threshold = sentence_threshold
        self.sentence_support = sentence_support
        self.context_threshold = context_threshold
        self.concern = concern
        self.context_turns = context_turns
        self.topic_threshold = topic_threshold

    def detect(self, text: str, *, sentences: Sequence[str] = ()) -> Detection:
        units = [text] + [s for s in sentences if s.strip() and s.strip() != text.strip()]
        normalised = [normalise(unit) for unit in units]
        resolved = self.patterns.says_resolved(normalised[0])
        hits: List[tuple] = []
        for index, unit in enumerate(normalised):
            for hit in self.patterns.match(self.patterns.blank_exclusions(unit)):
                hits.append((hit, index))
        scores: List[Score] = self.classifier.scores(units) if self.classifier is not None else []
        score = max((s.crisis for s in scores), default=0.0)
        best = max(scores, key=lambda s: s.crisis) if scores else None
        strong = [(hit, index) for hit, index in hits if not hit.rule.topic]
        topic = [(hit, index) for hit, index in hits if hit.rule.topic]
        # A topic word ("suicide", "overdose", "self-harm") confirmed by the classifier counts as
        # a pattern match; without a classifier (a model without one) it always does.
        if topic and (self.classifier is None or score >= self.topic_threshold):
            strong += topic
        if strong:
            hit, index = min(strong, key=lambda h: HELP_ORDER.index(h[0].help))
            help_ = choose_help(normalised[0], [h for h, _ in strong], best, self.patterns)
            return Detection(True, help_, "pattern", hit.rule.id, hit.rule.category, score, self.threshold, index,
                             resolved=resolved)
        if not resolved and scores:  # a message saying help has arrived is a new crisis only if a pattern says so
            whole = scores[0]
            if whole.crisis >= self.threshold:
                return Detection(True, choose_help(normalised[0], [], whole, self.patterns), "classifier", None, None,
                                 score, self.threshold, 0)
            if whole.crisis >= self.sentence_support:
                for index, found in enumerate(scores[1:], start=1):
                    if found.crisis >= self.sentence_threshold:
                        return Detection(True, choose_help(normalised[0], [], found, self.patterns), "classifier",
                                         None, None, score, self.sentence_threshold, index)
        concern = topic[0][0].rule.id if topic else self.patterns.topic_mention(normalised[0])
        return Detection(False, None, None, None, None, score, self.threshold, None, resolved=resolved,
                         concern=concern)

    def in_context(self, detection: Detection, previous: Sequence[Optional[Detection]], *,
                   clear_question: bool = False) -> Detection:
        """Apply the conversation-level memory. ``previous``: the detections of the earlier user
        turns, most recent first (None for a turn without one). ``clear_question``: NLU is
        confident this turn is a question about the treatment."""
        recent_turns = list(previous[: self.context_turns])
        recent = max((1.0 if d.crisis else d.score for d in recent_turns if d is not None), default=0.0)
        detection = replace(detection, recent=round(recent, 4))
        if detection.crisis or detection.resolved:
            return detection
        for age, earlier in enumerate(recent_turns):
            if earlier is None or earlier.resolved:
                break  # help arrived in between: the memory ends there
            if earlier.crisis and earlier.detector != "conversation":
                if age == 0 or not clear_question or detection.score >= self.context_threshold:
                    return replace(detection, crisis=True, help=earlier.help, detector="conversation",
                                   threshold=self.context_threshold)
                break
        latest = recent_turns[0] if recent_turns else None
        if latest is not None and not latest.crisis and latest.score >= self.concern and detection.score >= self.concern:
            return replace(detection, crisis=True, help="self", detector="conversation", threshold=self.concern)
        return detection
