"""Which approved clinic answer a question asks for, if any: the fact ranker (bot/answers/ranker.py)
over the approved answers' example questions beside the articles' facts and theirs, used when
NLU finds no article topic. A clinic answer is given only when it is the closest of all (a
question nearer an article fact is not the clinic's to answer) and at least ``min_score`` close.

Live without retraining: before each match the store's version number is read (one small query);
when it changed - an approval, an edit or a withdrawal by staff, on any server - the approved
answers are read again and the ranker rebuilt. So every action-server instance of the cluster
follows the shared database, not its own memory. A database that cannot be read is logged (by
error type) and the question gets the ordinary decline.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Optional, Tuple

from bot.clinic.store import ClinicAnswer, ClinicStore
from bot.knowledge import KnowledgeBase
from bot.knowledge.records import ROUTES, FactRecord, SourceRecord

if TYPE_CHECKING:
    from bot.answers.ranker import FactRanker

logger = logging.getLogger(__name__)

CLINIC_TOPIC = "clinic"
# How a clinic answer is named among the facts (records, explain mode). The patient-facing name
# of the source is the domain's (utter_clinic_answer in domain.yml).
CLINIC_SOURCE = SourceRecord(id="clinic", short_name="clinic", publisher="the clinic's staff",
                             title="clinic answers", citation="clinic answer")


@dataclass(frozen=True)
class ClinicMatch:
    answer: ClinicAnswer
    score: float
    fact: FactRecord


def as_fact(answer: ClinicAnswer) -> FactRecord:
    return FactRecord(id=answer.fact_id, topic=CLINIC_TOPIC, routes=ROUTES, text=answer.text, source=CLINIC_SOURCE,
                      position=answer.id)


class ClinicMatcher:
    def __init__(self, *, store: ClinicStore, knowledge_base: KnowledgeBase, min_score: float) -> None:
        self._store = store
        self._kb = knowledge_base
        self.min_score = min_score
        self._version: Optional[int] = None
        self._answers: Dict[str, ClinicAnswer] = {}
        self._ranker: Optional[FactRanker] = None
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        from bot.answers.ranker import FactRanker

        version = self._store.version()
        if version == self._version:
            return
        with self._lock:
            answers = self._store.approved()
            self._answers = {a.fact_id: a for a in answers}
            # a clinic answer is matched by its title and example questions, not by its text (an
            # answer's "bring someone who can take you home" must not draw "can I bring my dog?")
            self._ranker = FactRanker(
                facts=list(self._kb.facts(kind=None)) + [dataclasses.replace(as_fact(a), text=a.title) for a in answers],
                questions={**self._kb.fact_questions(), **{a.fact_id: a.examples for a in answers}},
            ) if answers else None
            self._version = version
            logger.info("clinic answers loaded: %d approved (version %d)", len(answers), version)

    def best(self, text: str) -> Optional[Tuple[ClinicAnswer, float]]:
        """The approved answer closest to ``text`` and its score (whatever the score), or None when
        there is none or an article fact is closer."""
        try:
            self._refresh()
        except Exception as error:  # noqa: BLE001 - the patient still gets the decline
            logger.error("clinic answers could not be read (%s)", type(error).__name__)
            return None
        ranker, answers = self._ranker, self._answers
        if ranker is None or not text.strip():
            return None
        fact, score = ranker.ranked(text)[0]
        return (answers[fact.id], score) if fact.id in answers else None

    def match(self, text: str) -> Optional[ClinicMatch]:
        """The approved answer whose example questions are close enough to ``text`` (at least
        ``min_score``), or None."""
        found = self.best(text)
        if found is None or found[1] < self.min_score:
            return None
        answer, score = found
        return ClinicMatch(answer, score, as_fact(answer))
