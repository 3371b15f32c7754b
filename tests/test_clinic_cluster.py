"""Clinic answers in the cluster profile: the answers live in the cluster's PostgreSQL (the
knowledge base's database), and an approval or a withdrawal reaches every Rasa instance's action
server at once - each follows the store's version number, not its own memory. Asked directly on
each instance (without the balancer), over REST."""
from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.servers

EXAMPLES = ["Is there parking at the clinic?", "Where can I park my car for the appointment?",
            "Do you have a car park for patients?"]
QUESTION = "is there somewhere to park when I come in for treatment?"
ANSWER = "There is free parking for patients behind the clinic building."


def test_an_approval_and_a_withdrawal_reach_every_instance(running_cluster):
    from bot.clinic.store import get_clinic_store

    store = get_clinic_store(database_url=running_cluster.database_url)
    instances = [running_cluster.instance(1), running_cluster.instance(2)]

    def replies() -> list:
        return ["\n".join(m.get("text") or "" for m in instance.say(f"clinic-{uuid.uuid4().hex[:8]}", QUESTION))
                for instance in instances]

    assert not any(ANSWER in reply for reply in replies())
    answer_id = store.draft(title="Parking", text=ANSWER, examples=EXAMPLES, author="alice")
    try:
        assert not any(ANSWER in reply for reply in replies())  # a draft: on neither instance
        store.approve(answer_id=answer_id, reviewer="bob", revision=1)
        for reply in replies():
            assert ANSWER in reply and "Source: the clinic" in reply and "not medical advice" in reply
    finally:
        store.withdraw(answer_id=answer_id, actor="carol", reason="test over")
    assert not any(ANSWER in reply for reply in replies())
