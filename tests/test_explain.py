"""Explain mode is the patient's path: the same conversation sent through explain mode and over
REST to the real servers gets the same intents, the same facts (in the staff records) and the
same replies, message for message - and explain mode writes nothing into the clinic's
conversations or records."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path

import pytest

CONVERSATION = [
    # several questions after a story: the parts are understood inside the NLU graph
    "I've had depression for years and my GP finally referred me. How long does the injection last? "
    "And what are the side effects?",
    "and with the drip?",  # a follow-up: the topic is the previous one's
    "which is faster, IV or IM? also is the shot safer?",
    "I took all my pills an hour ago and I feel really strange",  # a crisis: the help, first
    "how do I prepare for the infusion?",  # right after a crisis turn: the conversation's memory counts
]


@pytest.fixture(scope="module")
def explainer(trained_model):
    from bot.staff.explain import Explainer

    explainer = Explainer(model=trained_model)
    yield explainer
    explainer.close()


def rest_intents(assistant, sender: str):
    with sqlite3.connect(assistant.data_dir / "conversations.db") as db:
        rows = db.execute("SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id",
                          (assistant.conversation_id(sender),)).fetchall()
    return [json.loads(data)["parse_data"]["intent"]["name"] for data, in rows]


def records_of(url: str, key: str):
    """(kind, intent, facts) of a conversation's staff records, in order."""
    path = Path(url[len("sqlite:///"):])
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return db.execute("SELECT kind, intent, facts FROM turn_records WHERE conversation = ? ORDER BY at",
                          (key,)).fetchall()


def test_explain_mode_gets_what_a_patient_gets_over_rest(running_assistant, explainer):
    from bot.ops.settings import Settings
    from bot.staff.records import conversation_key

    sender = f"explain-{uuid.uuid4().hex[:8]}"
    loop = asyncio.new_event_loop()
    try:
        for text in CONVERSATION:
            over_rest = [{k: v for k, v in m.items() if k != "recipient_id"} for m in running_assistant.say(sender, text)]
            explained = loop.run_until_complete(explainer.explain(text))
            shown = [{k: v for k, v in m.items() if k != "recipient_id"} for m in explained.sent]
            assert shown == over_rest, text
            assert explained.messages == [m.get("text", "") for m in over_rest]
    finally:
        loop.close()
    explained_intents = [e.intent for e in explainer.history]
    assert explained_intents == rest_intents(running_assistant, sender)
    assert explained_intents[0].startswith("ask_") and explained_intents[3].startswith("crisis_")
    assert explainer.history[0].messages[-1].startswith("Privacy:")  # the first reply's notice, as on REST

    # The same staff records, facts included: the server's for the REST conversation, explain
    # mode's in its scratch folder.
    served = records_of(Settings(data_dir=running_assistant.data_dir).records_url,
                        conversation_key(running_assistant.conversation_id(sender),
                                         settings=Settings(data_dir=running_assistant.data_dir)))
    scratch = records_of(explainer.records_url, conversation_key(explainer.sender_id))
    assert served == scratch
    kinds = [kind for kind, _, _ in served]
    assert len(served) == len(CONVERSATION) and kinds[0] == "answer" and kinds[3] == "crisis", kinds
    first_facts = set(served[0][2].split())
    assert first_facts and first_facts == {fact.id for fact in explainer.history[0].reply.facts}


def test_explain_mode_writes_nothing_into_the_clinics_conversations_or_records(explainer):
    from bot.ops.settings import get_settings
    from bot.staff.records import conversation_key

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(explainer.explain("how long does the IV last?"))
    finally:
        loop.close()
    settings = get_settings()
    assert records_of(settings.records_url, conversation_key(explainer.sender_id)) == []
    if settings.tracker_store_path.exists():
        with sqlite3.connect(settings.tracker_store_path) as db:
            assert db.execute("SELECT count(*) FROM events WHERE sender_id = ?",
                              (explainer.sender_id,)).fetchone()[0] == 0
    # ...while the turn was recorded, where explain mode keeps it until it ends
    assert records_of(explainer.records_url, conversation_key(explainer.sender_id))
