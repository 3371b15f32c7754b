"""Wrong premises (knowledge/premises.yml) are corrected before the answer, with a fact of the
knowledge base; a negated claim or a plain question about the other route is left alone."""
from __future__ import annotations

import pytest

from bot.answers.assistant import Context, Question
from bot.answers.premises import load_premises, wrong_premises


def test_every_correction_is_a_fact_of_the_knowledge_base(kb):
    ids = {f.id for f in kb.facts(kind=None)}
    for premise in load_premises():
        assert premise.fact in ids, premise.id
        assert len(premise.reason) > 15


@pytest.mark.parametrize("text, premise", [
    ("the IM goes into a vein too, right?", "im-into-a-vein"),
    ("so the shot is intravenous as well?", "im-into-a-vein"),
    ("the drip takes three hours, yes?", "iv-takes-hours"),
    ("IV goes into the shoulder muscle like a flu jab?", "iv-into-a-muscle"),
    ("with the injection 100% gets absorbed into the bloodstream, correct?", "im-absorbs-everything"),
    ("IV only gets 93% in, doesn't it?", "iv-absorbs-93"),
])
def test_wrong_premises_are_found(text, premise):
    assert [p.id for p in wrong_premises(text)] == [premise]


@pytest.mark.parametrize("text", [
    "the IM doesn't go into a vein, right?",
    "which is faster, IV or IM?",
    "how long does the IV drip take?",
    "is the IV drip given into a vein?",
    "how much of the IM dose is absorbed?",
    # true or neutral statements a review found corrected (none is a wrong premise)
    "IM or intravenous, which is faster?",
    "IV is 100% and IM is 93%, right?",
    "is IM better than IV, which goes into a vein?",
    "IV or a shot into the muscle, which hurts less?",
    "the IV clinic is 2 hours away",
    "how long do the effects of an IV last, a few hours?",
    "im hoping the IV goes into a vein",
])
def test_true_or_open_questions_are_not_corrected(text):
    assert wrong_premises(text) == []


def test_the_correction_comes_first_then_the_answer(assistant):
    reply = assistant.respond(question=Question("the IM goes into a vein too, right? how long does it last?",
                                                "ask_duration", 0.9, ("im",)), context=Context())
    assert reply.messages[0].response == "utter_premise"
    assert "muscle" in reply.messages[0].values["correction"]
    assert reply.messages[1].response.startswith("utter_kb_")
    assert len({f.id for f in reply.facts}) == len(reply.facts)


def test_a_correction_the_answer_already_states_is_only_flagged(assistant):
    reply = assistant.respond(question=Question("the drip takes three hours, yes?", "ask_duration", 0.9, ("iv",)),
                              context=Context())
    assert reply.messages[0].response == "utter_premise_flag"
    assert any("40 minutes" in m.values.get("answer", "") for m in reply.messages[1:])
