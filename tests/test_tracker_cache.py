"""The tracker store reads only what a turn needs (bot/rasa/tracker_cache.py, bot/rasa/stores.py): a
conversation's events are read once, then only the rows added since - yet every change another
store made (rows added, a conversation deleted, a new session) is seen. A real SQLite database."""
import sqlalchemy as sa
import pytest

from bot.rasa.tracker_cache import SessionCache
from tests.clients import run_async


@pytest.fixture
def stores(tmp_path, rasa_domain):
    """Two stores on one database: this Rasa process, and another one (an instance, a purge)."""
    from bot.rasa.stores import PrePingSQLTrackerStore, create_conversation_schema

    url = f"sqlite:///{tmp_path / 'conversations.db'}"
    create_conversation_schema(url)
    return PrePingSQLTrackerStore(domain=rasa_domain, url=url), PrePingSQLTrackerStore(domain=rasa_domain, url=url)


def texts(tracker):
    return [event.text for event in tracker.events if getattr(event, "text", None)]


def say(store, sender, *words, timestamp=None):
    from rasa.shared.core.events import UserUttered

    tracker = run_async(store.retrieve(sender)) or store.init_tracker(sender)
    for word in words:
        tracker.update(UserUttered(word, timestamp=timestamp))
    run_async(store.save(tracker))


def rewrite_first_row(store, sender, text):
    """Change a stored row in place: the cache's mark (rows, highest id, latest time) stays the same."""
    import json

    events = store._events()
    with store.session_scope() as session:
        first = session.query(events).filter(events.sender_id == sender).order_by(events.id).first()
        data = json.loads(first.data)
        data["text"] = text
        session.execute(sa.update(events).where(events.id == first.id).values(data=json.dumps(data)))
        session.commit()


def test_an_unchanged_conversation_is_not_read_again_and_added_rows_are(stores):
    this, other = stores
    say(this, "p1", "which is faster?", "and IM?")
    assert texts(run_async(this.retrieve("p1"))) == ["which is faster?", "and IM?"]
    rewrite_first_row(other, "p1", "REWRITTEN")
    # the rows this process read are not read again...
    assert texts(run_async(this.retrieve("p1"))) == ["which is faster?", "and IM?"]
    # ...while rows another instance added are
    say(other, "p1", "does it hurt?")
    assert texts(run_async(this.retrieve("p1"))) == ["which is faster?", "and IM?", "does it hurt?"]
    # a store without the cache reads everything (the rewrite proves the rows were read again)
    this.sessions = SessionCache(capacity=0)
    assert texts(run_async(this.retrieve("p1"))) == ["REWRITTEN", "and IM?", "does it hurt?"]


def test_a_deleted_conversation_is_read_afresh_even_with_as_many_rows_again(stores):
    this, other = stores
    say(this, "p2", "first", "second")
    assert texts(run_async(this.retrieve("p2"))) == ["first", "second"]
    assert run_async(other.delete_conversation("p2")) == 2  # forget me, or the purge, elsewhere
    assert run_async(this.retrieve("p2")) is None
    say(other, "p2", "third", "fourth")
    assert texts(run_async(this.retrieve("p2"))) == ["third", "fourth"]


def test_rows_replaced_behind_the_cache_with_the_same_count_are_read_afresh(stores):
    this, other = stores
    say(this, "p3", "one", "two")
    assert texts(run_async(this.retrieve("p3"))) == ["one", "two"]
    with other.session_scope() as session:  # delete behind the cache's back, then two new rows
        events = other._events()
        session.query(events).filter(events.sender_id == "p3").delete()
        session.commit()
    say(other, "p3", "three", "four")
    assert texts(run_async(this.retrieve("p3"))) == ["three", "four"]


def test_a_new_session_starts_a_new_tracker(stores):
    from rasa.shared.core.events import ActionExecuted, SessionStarted

    this, other = stores
    say(this, "p4", "before", timestamp=1000.0)
    assert texts(run_async(this.retrieve("p4"))) == ["before"]
    tracker = run_async(other.retrieve("p4"))
    tracker.update(ActionExecuted("action_session_start", timestamp=2000.0))
    tracker.update(SessionStarted(timestamp=2000.0))
    run_async(other.save(tracker))
    say(other, "p4", "after", timestamp=2001.0)
    assert texts(run_async(this.retrieve("p4"))) == ["after"]


def test_each_turn_gets_a_tracker_of_its_own_with_the_slots_replayed(stores):
    from rasa.shared.core.events import SlotSet, UserUttered

    this, _ = stores
    tracker = this.init_tracker("p5")
    tracker.update(UserUttered("which is faster?"))
    tracker.update(SlotSet("topic", "speed"))
    run_async(this.save(tracker))
    first = run_async(this.retrieve("p5"))
    first.update(UserUttered("never saved"))
    first.update(SlotSet("topic", "cost"))
    second = run_async(this.retrieve("p5"))
    assert texts(second) == ["which is faster?"] and second.get_slot("topic") == "speed"


def test_the_cache_is_bounded_least_recently_used_first():
    cache = SessionCache(capacity=2)
    for sender in ("a", "b"):
        cache.put(sender, mark=(1, 1, 1.0), events=[sender])
    cache.get("a")
    cache.put("c", mark=(1, 2, 2.0), events=["c"])
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a").events == ("a",)


def test_conversations_and_records_are_written_ahead_into_owner_only_files(tmp_path, rasa_domain):
    """SQLite's write-ahead log (a commit is not a disk flush on every turn); its files are as
    private as the database."""
    import sqlite3
    import stat

    from bot.ops import runtime
    from bot.staff.records import TurnRecord, get_record_store
    from bot.rasa.stores import PrePingSQLTrackerStore, create_conversation_schema

    conversations, records = tmp_path / "var" / "conversations.db", tmp_path / "var" / "records.db"
    runtime.private_file(conversations)
    create_conversation_schema(f"sqlite:///{conversations}")
    say(PrePingSQLTrackerStore(domain=rasa_domain, url=f"sqlite:///{conversations}"), "p6", "which is faster?")
    get_record_store(url=f"sqlite:///{records}").add(record=TurnRecord(conversation="c", channel="rest", kind="answer"))
    for database in (conversations, records):
        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        log = database.with_name(database.name + "-wal")
        assert log.exists() and stat.S_IMODE(log.stat().st_mode) & 0o077 == 0


def test_the_launcher_creates_the_conversations_table_in_a_child_process(tmp_path):
    """`bot serve` stays small: Rasa's tracker store is imported by a short-lived child, which
    makes the table (and says why when it cannot)."""
    import sqlite3

    from bot.ops.serve import child_env, create_schema_apart
    from bot.ops.settings import get_settings

    create_schema_apart(f"sqlite:///{tmp_path / 'conversations.db'}", child_env(get_settings()))
    with sqlite3.connect(tmp_path / "conversations.db") as connection:
        assert connection.execute("SELECT name FROM sqlite_master WHERE name = 'events'").fetchone() == ("events",)
    with pytest.raises(RuntimeError, match="could not create the conversations' table"):
        create_schema_apart(f"sqlite:///{tmp_path / 'missing' / 'folder' / 'conversations.db'}", child_env(get_settings()))


def test_a_save_writes_exactly_the_events_the_turn_added(stores):
    this, other = stores
    for words in (("one",), ("two", "three"), ("four",)):
        say(this, "p7", *words)
    tracker = run_async(this.retrieve("p7"))
    assert texts(tracker) == ["one", "two", "three", "four"]
    assert run_async(other.count_events("p7")) == len(tracker.events)
