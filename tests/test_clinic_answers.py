"""Clinic answers in-process: the store's rules (a second account approves the revision it read,
an edit needs a new approval, a withdrawal stops it, every change audited), the content checks,
the matcher following the store's version (two action-server instances on one database), the
answer as patients get it (the clinic named by the domain, the disclaimer), a knowledge-base
rebuild that keeps the answers, and the export."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from sqlalchemy import create_engine

from bot.answers.assistant import Assistant, Context, Question
from bot.clinic.checks import check, refusals
from bot.clinic.export import export_answers
from bot.clinic.matcher import ClinicMatcher
from bot.clinic.store import APPROVED, DRAFT, WITHDRAWN, ClinicAnswerError, ClinicStore
from bot.answers.replies import DISCLAIMERS, outgoing
from bot.ops.settings import PROJECT_ROOT, get_settings

EXAMPLES = ["How much does one infusion session cost?", "What does a single infusion session cost?",
            "How much is the cost of one infusion session?"]
TEXT = "One IV infusion session at our clinic costs 450 dollars, paid on the day."


@pytest.fixture
def store(tmp_path) -> ClinicStore:
    return ClinicStore(engine=create_engine(f"sqlite:///{tmp_path / 'kb.db'}", future=True))


def approved_answer(store: ClinicStore) -> int:
    answer_id = store.draft(title="Price", text=TEXT, examples=EXAMPLES, author="alice")
    store.approve(answer_id=answer_id, reviewer="bob", revision=1)
    return answer_id


def test_only_a_second_account_approves_the_revision_it_read(store):
    answer_id = store.draft(title="Price", text=TEXT, examples=EXAMPLES + [" ", EXAMPLES[0].upper()], author="alice")
    assert store.get(answer_id=answer_id).examples == tuple(EXAMPLES)  # blank lines and repeats dropped
    with pytest.raises(ClinicAnswerError, match="another staff account"):
        store.approve(answer_id=answer_id, reviewer="alice", revision=1)
    with pytest.raises(ClinicAnswerError, match="edited since you read it"):
        store.approve(answer_id=answer_id, reviewer="bob", revision=2)
    assert store.get(answer_id=answer_id).status == DRAFT and store.approved() == []
    store.approve(answer_id=answer_id, reviewer="bob", revision=1)
    answer = store.get(answer_id=answer_id)
    assert (answer.status, answer.reviewer, answer.author) == (APPROVED, "bob", "alice") and answer.reviewed_at

    # bob edits it: a new revision by bob, a draft again, which bob cannot approve but alice can
    assert store.edit(answer_id=answer_id, title="Price", text=TEXT + " Packages too.", examples=EXAMPLES,
                      editor="bob") == 2
    assert store.get(answer_id=answer_id).status == DRAFT and store.approved() == []
    with pytest.raises(ClinicAnswerError):
        store.approve(answer_id=answer_id, reviewer="bob", revision=2)
    store.approve(answer_id=answer_id, reviewer="alice", revision=2)
    store.withdraw(answer_id=answer_id, actor="carol", reason="prices change")
    assert store.get(answer_id=answer_id).status == WITHDRAWN and store.approved() == []
    with pytest.raises(ClinicAnswerError):
        store.approve(answer_id=answer_id, reviewer="bob", revision=2)
    assert [(e.action, e.actor, e.revision) for e in reversed(store.audit(answer_id=answer_id))] == [
        ("drafted", "alice", 1), ("approved", "bob", 1), ("edited", "bob", 2), ("approved", "alice", 2),
        ("withdrawn", "carol", 2)]
    assert store.audit()[0].detail == "was approved: prices change"
    assert store.version() == 5


def test_the_store_refuses_to_approve_what_the_checks_refuse_and_incomplete_answers(store):
    answer_id = store.draft(title="Dose", text="We give 0.5 mg/kg.", examples=EXAMPLES, author="alice")
    with pytest.raises(ClinicAnswerError, match="content checks"):
        store.approve(answer_id=answer_id, reviewer="bob", revision=1)
    with pytest.raises(ClinicAnswerError, match="two example questions"):
        store.draft(title="Price", text=TEXT, examples=[EXAMPLES[0]], author="alice")
    with pytest.raises(ClinicAnswerError, match="title"):
        store.draft(title=" ", text=TEXT, examples=EXAMPLES, author="alice")


@pytest.mark.parametrize("text, kinds", [
    ("The usual dose is 0.5 mg/kg over 40 minutes.", ["dose"]),
    ("We give 35mg by injection.", ["dose"]),
    ("It is measured in milligrams per kilogram of body weight.", ["dose"]),
    ("You should stop taking your lithium two days before.", ["personal"]),
    ("Stop taking your antidepressants the night before.", ["personal"]),
    ("Please skip your evening pills on the day.", ["personal"]),
    ("A session costs 450 dollars; most patients have six sessions.", []),
    ("You should bring someone to drive you home.", []),
])
def test_dose_figures_and_personal_instructions_are_refused(text, kinds):
    assert sorted({f.kind for f in refusals(text)}) == kinds


def test_a_figure_the_articles_contradict_is_a_warning(kb):
    facts = kb.facts()
    warned = check("With an IM injection about 50% of the ketamine reaches your bloodstream.", facts=facts)
    assert warned.ok and [w.text for w in warned.warnings] == ["50%"] and "93%" in warned.warnings[0].detail
    lasting = check("At our clinic the effects of the IM injection last about 3 hours.", facts=facts)
    assert [w.text for w in lasting.warnings] == ["3 hours"] and "30 to 45 minutes" in lasting.warnings[0].detail
    # the articles' own figures, and figures about other things, are no contradiction
    assert check("IM effects last about 45 minutes; IV reaches 100% of the bloodstream.", facts=facts).warnings == ()
    assert check("Please don't drive for 24 hours after your session.", facts=facts).warnings == ()


def test_every_instance_follows_the_shared_store(kb, tmp_path):
    """Two action servers (two matchers) on one database: an approval on either side reaches both
    without a restart, a withdrawal stops both; drafts never answer; article questions never get it."""
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    store = ClinicStore(engine=create_engine(url, future=True))
    bar = get_settings().clinic_answer_min_score
    first, second = (ClinicMatcher(store=ClinicStore(engine=create_engine(url, future=True)), knowledge_base=kb,
                                   min_score=bar) for _ in range(2))
    question = "what's the cost of an infusion session at your clinic?"
    answer_id = store.draft(title="Price", text=TEXT, examples=EXAMPLES, author="alice")
    assert first.match(question) is None and second.match(question) is None
    store.approve(answer_id=answer_id, reviewer="bob", revision=1)
    for matcher in (first, second):
        found = matcher.match(question)
        assert found is not None and found.answer.id == answer_id and found.score >= bar
    assert first.match("how long does the IM shot last?") is None  # the articles' question stays theirs
    store.withdraw(answer_id=answer_id, actor="carol")
    assert first.match(question) is None and second.match(question) is None


def test_patients_get_the_clinic_answer_with_its_source_and_the_disclaimer(kb, nlp, tmp_path, render):
    store = ClinicStore(engine=create_engine(f"sqlite:///{tmp_path / 'kb.db'}", future=True))
    settings = get_settings()
    assistant = Assistant(knowledge_base=kb, settings=settings, nlp_loader=lambda: nlp,
                          clinic=ClinicMatcher(store=store, knowledge_base=kb,
                                               min_score=settings.clinic_answer_min_score))
    question = "what's the cost of an infusion session at your clinic?"
    assert assistant.decline(text=question).kind == "out_of_scope"
    approved_answer(store)
    for reply in (assistant.decline(text=question),
                  assistant.respond(question=Question(question, "nlu_fallback", 0.3), context=Context())):
        assert reply.kind == "clinic" and reply.facts[0].id.startswith("clinic-")
        messages = outgoing(reply)
        assert messages[-1].response in DISCLAIMERS
        shown = render([{"response": m.response, **m.values} for m in messages])
        assert shown[0]["text"].startswith(TEXT)
        assert "Source: the clinic (an answer written and reviewed by its staff, " in shown[0]["text"]
    assert assistant.decline(text="Is there parking near the clinic?").kind == "out_of_scope"


def test_a_knowledge_base_rebuild_keeps_the_clinic_answers(tmp_path):
    from bot.clinic.store import get_clinic_store
    from bot.knowledge.build import build_knowledge_base

    url = f"sqlite:///{tmp_path / 'knowledge.db'}"
    build_knowledge_base(knowledge_dir=PROJECT_ROOT / "knowledge", database_url=url)
    store = get_clinic_store(database_url=url)
    answer_id = approved_answer(store)
    build_knowledge_base(knowledge_dir=PROJECT_ROOT / "knowledge", database_url=url)
    kept = get_clinic_store(database_url=url)
    assert [a.id for a in kept.approved()] == [answer_id] and kept.version() == 2
    assert len(kept.audit(answer_id=answer_id)) == 2


def test_export_writes_the_approved_answers(store, tmp_path):
    answer_id = approved_answer(store)
    store.draft(title="Parking", text="Free parking behind the building.", examples=["parking?", "where to park"],
                author="alice")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clinic-99-old.yml").write_text("old")
    written = export_answers(store=store, directory=tmp_path / "out")
    assert [p.name for p in written] == [f"clinic-{answer_id}-price.yml"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"clinic-{answer_id}-price.yml"]
    document = yaml.safe_load(written[0].read_text())
    assert document["source"] == "the clinic" and document["author"] == "alice" and document["reviewer"] == "bob"
    assert document["text"] == TEXT and document["questions"] == EXAMPLES and document["reviewed"]


def test_a_running_store_follows_a_rebuilt_sqlite_file(tmp_path):
    """The web server and the action servers keep their store while `bot build` swaps in a new
    file: what they write and read after the swap is in the new file, not the replaced one."""
    from bot.clinic.store import get_clinic_store
    from bot.knowledge.build import build_knowledge_base

    url = f"sqlite:///{tmp_path / 'knowledge.db'}"
    build_knowledge_base(knowledge_dir=PROJECT_ROOT / "knowledge", database_url=url)
    running = get_clinic_store(database_url=url)
    first = approved_answer(running)
    # `bot build` in another process (this one's connections are not told)
    code = ("from pathlib import Path; from bot.knowledge.build import build_knowledge_base; "
            f"build_knowledge_base(knowledge_dir=Path({str(PROJECT_ROOT / 'knowledge')!r}), database_url={url!r})")
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    second = approved_answer(running)
    fresh = ClinicStore(engine=create_engine(url, future=True))
    assert [a.id for a in fresh.approved()] == [first, second] and fresh.version() == running.version() == 4


def test_the_export_command(tmp_path):
    """`python -m bot export-clinic --dir DIR` (what `./run.sh export-clinic` runs) for the
    configured knowledge base."""
    from bot.clinic.store import get_clinic_store

    url = f"sqlite:///{tmp_path / 'knowledge.db'}"
    answer_id = approved_answer(get_clinic_store(database_url=url))
    done = subprocess.run([sys.executable, "-m", "bot", "export-clinic", "--dir", str(tmp_path / "clinic")],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "KB_DATABASE_URL": url})
    assert done.returncode == 0 and "1 approved clinic answer written" in done.stdout, done.stderr
    assert yaml.safe_load((tmp_path / "clinic" / f"clinic-{answer_id}-price.yml").read_text())["text"] == TEXT


def test_an_answer_is_matched_by_its_title_and_questions_not_its_text(kb, store):
    answer_id = store.draft(title="Getting home after treatment",
                            text="Please do not drive for the rest of the day. Bring someone who can take you home.",
                            examples=["Can I drive home after my infusion?", "Am I allowed to drive after the session?"],
                            author="alice")
    store.approve(answer_id=answer_id, reviewer="bob", revision=1)
    matcher = ClinicMatcher(store=store, knowledge_base=kb, min_score=get_settings().clinic_answer_min_score)
    assert matcher.match("can I drive myself back after the injection").answer.id == answer_id
    assert matcher.match("Can I bring my dog?") is None


def test_explain_mode_names_the_clinic_answer(trained_model, kb, nlp, tmp_path):
    """What staff see in explain mode for a question a clinic answer answers (NLU finds no article
    topic): the clinic answer, its similarity, and the reply patients get."""
    import asyncio

    from bot.staff.explain import Explainer

    store = ClinicStore(engine=create_engine(f"sqlite:///{tmp_path / 'kb.db'}", future=True))
    answer_id = approved_answer(store)
    settings = get_settings()
    assistant = Assistant(knowledge_base=kb, settings=settings, nlp_loader=lambda: nlp,
                          clinic=ClinicMatcher(store=store, knowledge_base=kb,
                                               min_score=settings.clinic_answer_min_score))
    loop = asyncio.new_event_loop()
    try:
        shown = loop.run_until_complete(Explainer(model=trained_model, assistant=assistant).explain(
            "what's the cost of an infusion session at your clinic?")).render()
    finally:
        loop.close()
    assert "action     : action_fallback" in shown and "reply kind : clinic" in shown
    assert "clinic     : a staff-approved clinic answer, similarity" in shown
    assert f"fact       : clinic-{answer_id} " in shown and TEXT in shown
    assert "Source: the clinic (an answer written and reviewed by its staff" in shown and "not medical advice" in shown
