"""The staff side's library on real databases (SQLite files; the cluster tests use PostgreSQL):
records, scrubbing, grouping, staff accounts, and the retention purge from the command line
with back-dated conversations and records."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from bot.ops.settings import PROJECT_ROOT, Settings
from bot.staff.accounts import Accounts, AccountError, same_token
from bot.staff.clusters import MeaningGrouper, QuestionGrouper, default_encoder, group_by_words
from bot.staff.embeddings import EncoderUnavailable, load_encoder, package_archive
from bot.staff.dashboard import csv_text, parse_period
from bot.staff.records import Period, RecordStore, TurnRecord, conversation_key, summarize, utcnow
from bot.staff.scrub import scrub


@pytest.fixture
def store(tmp_path):
    from bot.knowledge.store import engine_for

    records = RecordStore(engine=engine_for(f"sqlite:///{tmp_path / 'records.db'}"))
    records.create_schema()
    return records


def test_a_crisis_record_cannot_carry_text():
    with pytest.raises(ValueError):
        TurnRecord(conversation="c", channel="rest", kind="crisis", question="anything")
    with pytest.raises(ValueError):
        TurnRecord(conversation="c", channel="rest", kind="chitchat")


def test_conversation_keys_are_keyed_hashes(tmp_path):
    one = Settings(data_dir=tmp_path / "a", records_id_key="records-key-one-0f8e2a61c9d34b7e")
    other = Settings(data_dir=tmp_path / "b", records_id_key="records-key-two-5b1c7d09e3a84f26")
    assert conversation_key("patient-1", settings=one) == conversation_key("patient-1", settings=one)
    assert conversation_key("patient-1", settings=one) != conversation_key("patient-1", settings=other)
    assert "patient" not in conversation_key("patient-1", settings=one)
    generated = Settings(data_dir=tmp_path / "c")  # no key given: generated once into DATA_DIR
    assert conversation_key("x", settings=generated) == conversation_key("x", settings=generated)
    assert (tmp_path / "c" / "secrets" / "records-id.key").stat().st_mode & 0o077 == 0


def test_rating_follow_up_and_deleting_one_conversation(store):
    store.add(record=TurnRecord(conversation="a", channel="rest", kind="answer", topic="onset", facts=("f1", "f2"),
                                message_id="m1"))
    store.add(record=TurnRecord(conversation="b", channel="rest", kind="fallback", question="zz"))
    latest = store.latest_rated(conversation="a")
    assert latest.facts == ("f1", "f2") and latest.message_id == "m1"
    assert store.latest_rated(conversation="b") is None  # a fallback offers no rating
    assert not store.rate(record_id=latest.id, conversation="b", value=-1)  # another conversation's record
    assert store.rate(record_id=latest.id, conversation="a", value=-1, question="which is faster")
    assert store.add_followup(conversation="a", text="prices")
    assert not store.add_followup(conversation="b", text="x")  # nothing rated down there
    rows = store.records(period=Period.last_days(1))
    assert [(r.conversation, r.feedback, r.question, r.followup) for r in rows][0] == ("a", -1, "which is faster", "prices")
    assert store.delete_conversation(conversation="a") == (1, 0)
    assert [r.conversation for r in store.records(period=Period.last_days(1))] == ["b"]


def test_candidates_made_from_a_conversation_go_with_it(store):
    """Candidates made from unanswered questions' records are linked to the conversations that asked
    them: deleting one of those conversations ("forget me") deletes them; staff can delete one too."""
    asked = [TurnRecord(conversation=c, channel="rest", kind="fallback", question="is there wifi?")
             for c in ("asker", "another-asker")]
    parking = TurnRecord(conversation="other", channel="rest", kind="answer", feedback=-1,
                         question="is the drip painful?", followup="where do I park?")
    answered = TurnRecord(conversation="other", channel="rest", kind="answer")  # no text: no candidate
    for record in (*asked, parking, answered):
        store.add(record=record)
    wifi, park = store.add_candidates(record_ids=[asked[0].id, asked[1].id, parking.id, answered.id], added_by="alice")
    assert [(c[0], c[1]) for c in store.candidates()] == [(wifi, "is there wifi?"), (park, "where do I park?")]
    assert store.add_candidates(record_ids=["no-such-record"], added_by="alice") == []
    assert store.delete_conversation(conversation="asker") == (1, 1)  # one of the askers is forgotten
    assert [c[0] for c in store.candidates()] == [park]
    assert store.remove_candidate(candidate_id=park) and not store.remove_candidate(candidate_id=park)
    assert store.delete_conversation(conversation="other") == (2, 0)  # its candidate was deleted by hand
    assert store.candidates() == []


def test_delete_before_works_in_batches_and_keeps_newer_records(store):
    old = utcnow() - timedelta(days=40)
    for number in range(7):
        store.add(record=TurnRecord(conversation=f"old{number}", channel="rest", kind="answer", at=old))
    store.add(record=TurnRecord(conversation="new", channel="rest", kind="answer"))
    store.add_candidate(text="kept", added_by="alice")
    cutoff = utcnow() - timedelta(days=30)
    assert store.count_before(cutoff=cutoff) == {"records": 7, "candidates": 0}
    assert store.delete_before(cutoff=cutoff, batch=3) == {"records": 7, "candidates": 0}
    assert [r.conversation for r in store.records(period=Period.last_days(60))] == ["new"]
    assert [c[1] for c in store.candidates()] == ["kept"]


def test_summary_tables():
    day = utcnow().replace(hour=12)
    records = [
        TurnRecord(conversation="a", channel="rest", kind="answer", topic="onset", facts=("f1",), feedback=1, at=day),
        TurnRecord(conversation="a", channel="rest", kind="comparison", topic="onset", facts=("f1", "f2"), feedback=-1, at=day),
        TurnRecord(conversation="b", channel="twilio", kind="fallback", at=day),
        TurnRecord(conversation="c", channel="twilio", kind="crisis", at=day),
    ]
    summary = summarize(records, period=Period.last_days(7))
    assert {(r["channel"], r["conversations"], r["messages"]) for r in summary.daily} == {("rest", 1, 2), ("twilio", 2, 2)}
    assert summary.topics == [{"topic": "onset", "answers": 2}]
    shares = {r["outcome"]: r["share"] for r in summary.outcomes}
    assert shares["fallback"] == 0.25 and shares["crisis"] == 0.25
    assert {r["fact"]: (r["helpful"], r["not_helpful"]) for r in summary.feedback_facts} == {"f1": (1, 1), "f2": (0, 1)}


@pytest.mark.parametrize("text, gone, kept", [
    ("Hi my name is Anna Smith, call me on +1 (555) 010-2233", ["Anna", "Smith", "555"], ["[name]", "[phone]"]),
    ("I'm Tom and I wonder if IV is faster", ["Tom"], ["IV is faster"]),
    ("is it safe? thanks, Maria", ["Maria"], ["is it safe"]),
    ("Dr. Jones said I need six sessions", ["Jones"], ["six sessions"]),
    ("write to me: pat.doe@example.co.uk or www.example.com/me", ["pat.doe", "example.com"], ["[email]", "[link]"]),
    ("my NHS number is 485 777 3456", ["485", "3456"], ["[phone]"]),
    ("how long does the IM shot last?", [], ["how long does the IM shot last?"]),
    ("I’m Anna Smith, can I drive after?", ["Anna", "Smith"], ["can I drive after?"]),
    ("Im Anna and im scared", ["Anna"], ["scared"]),
    ("my name is anna, is it safe", ["anna"], ["is it safe"]),
    ("this is scary, is the drip safe?", [], ["this is scary"]),
])
def test_scrubbing_removes_contact_details_and_names(built_project, text, gone, kept):
    cleaned = scrub(text)
    assert not any(word in cleaned for word in gone), cleaned
    assert all(word in cleaned for word in kept), cleaned


WIFI = ["Is there wifi in the infusion room?", "Can I use the wifi during my session?",
        "Do you have free wifi I could use while I wait?"]
PARKING = ["Is there parking at the clinic?", "Where can I park my car when I come for treatment?",
           "Do you have a car park for patients?"]
PRICE = ["how much is one infusion?", "what's a session's price", "how expensive is a visit"]  # issue 23
OTHERS = ["Do you take Aetna insurance?", "can my dog come with me", "is the IV drip painful?"]


def test_the_old_lemma_grouping_joins_shared_words(nlp):
    for questions in (WIFI + ["is the IV drip painful?"], WIFI + PARKING + OTHERS):
        groups = {frozenset(c.examples) for c in group_by_words(questions, nlp=nlp)}
        assert frozenset(WIFI) in groups
    groups = group_by_words(WIFI + PARKING + OTHERS, nlp=nlp)
    assert [c.count for c in groups[:2]] == [3, 3] and all(c.count == 1 for c in groups[2:])
    # what it cannot do: a price asked in three ways shares no word (issue 23)
    assert len(group_by_words(PRICE, nlp=nlp)) == 3
    assert group_by_words([], nlp=nlp) == []


def test_the_encoder_reproduces_the_models_published_embedding():
    """The numpy forward pass gives what sentence-transformers gives for all-MiniLM-L6-v2: the
    first values of "This is an example sentence" as its documentation prints them."""
    encoder = load_encoder()
    vector = encoder.encode(["This is an example sentence"])[0]
    assert vector.shape == (384,) and abs(float(vector @ vector) - 1.0) < 1e-5
    assert [round(float(v), 4) for v in vector[:5]] == [0.0677, 0.0635, 0.0487, 0.0793, 0.0374]
    # a batch pads its shorter texts: their vectors are the same as alone
    alone = encoder.encode(["which is faster?"])[0]
    batched = encoder.encode(["which is faster?", "a much longer question about what happens after the infusion ends"])[0]
    assert float(alone @ batched) > 0.9999
    assert encoder.knows_a_word("which is faster?") and not encoder.knows_a_word("qzvkfpwj xhqjtrbn?")


def test_questions_group_by_meaning():
    grouper = MeaningGrouper(encoder_loader=default_encoder)
    groups = grouper.group(PRICE + WIFI + PARKING + OTHERS)
    assert {frozenset(c.examples) for c in groups[:3]} == {frozenset(PRICE), frozenset(WIFI), frozenset(PARKING)}
    assert [c.count for c in groups] == [3, 3, 3, 1, 1, 1]
    assert sorted(groups[0].members) == sorted(groups[0].examples)
    # random letters mean nothing: each string is its own group (the same string asked twice, one)
    noise = ["qzvkfpwj xhqjtrbn?", "bnmfdklz wqxtrpgh?"]
    groups = grouper.group(noise + noise[:1] + PRICE)
    assert sorted(c.count for c in groups) == [1, 2, 3]
    assert grouper.group([]) == [] and [c.count for c in grouper.group(PRICE[:1])] == [1]


@pytest.mark.parametrize("broken", ["missing", "corrupt"])
def test_grouping_says_so_when_the_model_cannot_load(nlp, tmp_path, caplog, broken):
    archive = tmp_path / "model.zip"
    if broken == "corrupt":
        archive.write_bytes(package_archive().read_bytes()[:4096])  # a truncated download
    with pytest.raises(EncoderUnavailable):
        load_encoder(archive)
    grouper = QuestionGrouper(encoder_loader=lambda: load_encoder(archive), nlp_loader=lambda: nlp)
    grouping = grouper.group(WIFI + OTHERS)
    assert not grouping.by_meaning and str(archive) in grouping.problem
    assert frozenset(WIFI) in {frozenset(c.examples) for c in grouping.clusters}  # by shared words instead
    grouper.group(WIFI)
    assert [r.getMessage() for r in caplog.records].count(
        f"grouping by shared words: the sentence-embedding model cannot load ({grouping.problem})") == 1
    working = QuestionGrouper(nlp_loader=lambda: nlp).group(PRICE)
    assert working.by_meaning and working.problem == "" and [c.count for c in working.clusters] == [3]


def sign_in(accounts, username: str, password: str, address: str = "192.0.2.10"):
    """One sign-in as the dashboard does it (without its wait): (attempt, result or None if refused)."""
    attempt = accounts.begin_sign_in(username=username, address=address)
    return attempt, (None if attempt.refused else accounts.finish_sign_in(attempt, username=username, password=password))


def test_staff_accounts_hash_and_sessions(store):
    settings = Settings(staff_lockout_attempts=3, staff_lockout_minutes=5)
    accounts = Accounts(engine=store.engine, settings=settings)
    with pytest.raises(AccountError):
        accounts.create(username="alice", password="short")
    accounts.create(username="alice", password="a long enough password")
    with pytest.raises(AccountError):
        accounts.create(username="alice", password="another long password")
    from sqlalchemy import text

    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM staff_accounts")).scalar_one()
    assert stored.startswith("$argon2id$") and "long enough" not in stored
    assert sign_in(accounts, "alice", "a long enough password")[1].ok
    assert not sign_in(accounts, "nobody", "a long enough password")[1].ok
    token = accounts.open_session(username="alice")
    login = accounts.session(token=token)
    assert login.username == "alice" and same_token(login.csrf_token, login.csrf_token)
    assert not same_token(login.csrf_token, "forged") and not same_token(login.csrf_token, None)
    accounts.close_session(token=token)
    assert accounts.session(token=token) is None


def test_sign_in_throttles_the_address_and_slows_the_name_but_never_locks_the_account(store):
    from bot.staff.accounts import delay_after

    settings = Settings(staff_lockout_attempts=3, staff_lockout_minutes=5, staff_login_delay_max_seconds=8)
    accounts = Accounts(engine=store.engine, settings=settings)
    accounts.create(username="alice", password="a long enough password")
    assert [delay_after(n, cap=8) for n in range(6)] == [0, 1, 2, 4, 8, 8]
    stranger = "203.0.113.66"
    delays, locked = [], []
    for _ in range(3):
        attempt, result = sign_in(accounts, "alice", "guess", stranger)
        delays.append(attempt.delay)
        locked.append(result.address_locked)
    assert delays == [0, 1, 2] and locked == [False, False, True]  # the third failure locks the address out
    attempt, result = sign_in(accounts, "alice", "a long enough password", stranger)
    assert attempt.refused and result is None  # even the right password, from that address
    # alice, from her own address: not locked - her check waits for the stranger's failures, then works
    attempt, result = sign_in(accounts, "alice", "a long enough password", "192.0.2.10")
    assert not attempt.refused and attempt.delay == 4 and result.ok
    assert sign_in(accounts, "alice", "wrong", "192.0.2.10")[0].delay == 0  # a right password reset it
    # unknown and known names alike: the same waits, so the delay does not tell which names exist
    unknown = [sign_in(accounts, "nobody", "guess", "198.51.100.1")[0].delay for _ in range(2)]
    known = [sign_in(accounts, "alice", "guess", "198.51.100.2")[0].delay for _ in range(2)]
    assert unknown == [0, 1] and known == [1, 2]
    # a reset on the command line clears the name's failures
    accounts.create(username="alice", password="a brand new password", replace=True)
    attempt, result = sign_in(accounts, "alice", "a brand new password", "192.0.2.10")
    assert attempt.delay == 0 and result.ok
    # nothing in the table names a user or an address in clear
    from sqlalchemy import text

    with store.engine.connect() as connection:
        keys = " ".join(connection.execute(text("SELECT key FROM staff_sign_in_throttle")).scalars())
    assert keys and not any(clear in keys for clear in ("alice", "nobody", stranger, "192.0.2.10"))


def test_periods_and_csv_cells():
    from datetime import date

    today = date(2026, 11, 22)
    assert parse_period({}, today=today) == Period(date(2026, 10, 24), today)
    assert parse_period({"from": ["2026-11-01"], "to": ["2026-11-02"]}, today=today) == Period(date(2026, 11, 1), date(2026, 11, 2))
    assert parse_period({"from": ["2026-11-05"], "to": ["2026-11-01"]}, today=today).last == today  # reversed: default
    assert parse_period({"from": ["nonsense"]}, today=today).first == date(2026, 10, 24)
    assert csv_text([{"text": "=HYPERLINK(1)"}], ["text"]).splitlines()[1] == "'=HYPERLINK(1)"


# ---- the purge from the command line, on a stopped embedded assistant --------------------------------

def purge_cli(data_dir, *args):
    env = {**os.environ, "DATA_DIR": str(data_dir), "PYTHONPATH": str(PROJECT_ROOT), "ASSISTANT_PROFILE": "embedded"}
    return subprocess.run([sys.executable, "-m", "bot", "purge", *args], capture_output=True, text=True, env=env,
                          cwd=PROJECT_ROOT, timeout=300)


def test_purge_command_dry_run_then_delete_backdated_conversations_and_records(tmp_path, rasa_domain):
    import time

    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.staff.records import get_record_store
    from bot.rasa.stores import PrePingSQLTrackerStore, create_conversation_schema
    from tests.clients import run_async

    settings = Settings(data_dir=tmp_path)
    url = f"sqlite:///{settings.tracker_store_path}"
    create_conversation_schema(url)  # as `bot serve` does before the first start
    tracker_store = PrePingSQLTrackerStore(domain=rasa_domain, url=url)
    now = time.time()
    for sender, age_days in (("old-patient", 40), ("recent-patient", 2)):
        tracker = DialogueStateTracker(sender, rasa_domain.slots)
        tracker.update(UserUttered("which is faster?", timestamp=now - age_days * 86400))
        run_async(tracker_store.save(tracker))
    records = get_record_store(url=settings.records_url)
    old_key, recent_key = (conversation_key(s, settings=settings) for s in ("old-patient", "recent-patient"))
    records.add(record=TurnRecord(conversation=old_key, channel="rest", kind="answer", at=utcnow() - timedelta(days=40)))
    records.add(record=TurnRecord(conversation=recent_key, channel="rest", kind="answer"))

    dry = purge_cli(tmp_path, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would delete conversation {old_key} (events=1)" in dry.stdout and recent_key not in dry.stdout
    assert run_async(tracker_store.count_events("old-patient")) == 1  # a dry run deletes nothing

    done = purge_cli(tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"deleted conversation {old_key} (events=1, records=1, candidates=0)" in done.stdout
    assert run_async(tracker_store.count_events("old-patient")) == 0
    assert run_async(tracker_store.count_events("recent-patient")) == 1
    assert [r.conversation for r in records.records(period=Period.last_days(60))] == [recent_key]
    audit = (tmp_path / "log" / "purge.log").read_text()
    assert f"purge: deleted conversation {old_key}" in audit and "old-patient" not in audit


def test_purge_command_refuses_while_the_embedded_assistant_runs(tmp_path):
    """The embedded assistant's conversation locks live in its process: it holds
    DATA_DIR/run/conversations.lock, and a purge by hand waits for it to stop."""
    from bot.staff.conversations import hold_conversations_lock

    settings = Settings(data_dir=tmp_path)
    settings.tracker_store_path.parent.mkdir(parents=True, exist_ok=True)
    settings.tracker_store_path.touch()
    held = hold_conversations_lock(settings)
    try:
        refused = purge_cli(tmp_path)
        assert refused.returncode == 1 and "The assistant is running" in refused.stdout
    finally:
        os.close(held)


def test_an_answer_is_recorded_off_the_event_loop_in_order(assistant, dispatcher, domain_dict):
    """While another writer holds the records database, the action server's event loop goes on
    serving: the action waits for its record on the records thread, which writes it once the
    database is free (nothing is lost, and a thumbs-up after it finds it)."""
    import asyncio
    import sqlite3

    from actions.feedback import ActionFeedback
    from actions.knowledge import ActionAnswerQuestion
    from bot.ops.settings import get_settings
    from bot.staff.records import get_record_store
    from tests.clients import run_async
    from tests.conftest import make_tracker

    settings = get_settings()
    records = get_record_store()
    conversation = conversation_key("test-patient", settings=settings)

    def mine():
        return [r for r in records.records(period=Period.last_days(1)) if r.conversation == conversation]

    before = len(mine())
    tracker = make_tracker(text="which is faster?", intent="ask_onset", routes=["iv"])

    async def scenario():
        loop = asyncio.get_running_loop()
        holder = sqlite3.connect(settings.records_url.split("sqlite:///", 1)[1], isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            turn = asyncio.ensure_future(ActionAnswerQuestion(assistant).run(dispatcher, tracker, domain_dict))
            served = loop.create_future()
            loop.call_soon(lambda: served.set_result(turn.done()))  # runs once the turn yields the loop
            turn_done_while_database_held = await served
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await turn
        return turn_done_while_database_held

    done_while_held = run_async(scenario())
    assert done_while_held is False  # the loop ran other work while the record waited
    after = mine()
    assert len(after) == before + 1 and after[-1].topic == "onset"
    run_async(ActionFeedback().run(dispatcher, make_tracker(text="👍", intent="feedback_up"), domain_dict))
    assert mine()[-1].feedback == 1
