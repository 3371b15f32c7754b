"""The knowledge base: built from the curated files, complete, sourced, in our own words."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.knowledge import get_knowledge_base
from bot.knowledge.build import build_knowledge_base
from bot.knowledge.curated import CurationError, load_curated
from bot.knowledge.records import ROUTES
from bot.knowledge.store import KnowledgeBaseMissing
from tests.conftest import SEEDS_DIR

TOPICS = {
    "routes", "procedure", "absorption", "onset", "peak", "duration", "experience", "control",
    "safety", "side_effects", "needles", "first_time", "pain", "depression", "conditions",
    "preparation", "dosing", "choosing", "effectiveness", "about",
}


def test_build_loads_every_curated_fact(kb, project_root):
    curated = load_curated(knowledge_dir=project_root / "knowledge")
    assert {f.id for f in kb.facts(kind=None)} == {f.id for f in curated.facts}
    assert len(kb.facts()) >= 60


def test_every_issue_topic_exists(kb):
    assert {t.id for t in kb.topics()} == TOPICS


@pytest.mark.parametrize("topic", sorted(TOPICS))
@pytest.mark.parametrize("route", ROUTES)
def test_every_topic_has_facts_for_both_routes(kb, topic, route):
    facts = kb.facts(topic=topic, route=route)
    assert facts, f"no {route} fact for {topic}"
    assert all(route in f.routes for f in facts)


def test_every_fact_names_its_source_article(kb):
    sources = {s.id: s for s in kb.sources()}
    assert set(sources) == {"klearwell", "innerbloom"}
    for fact in kb.facts():
        assert fact.source.id in sources
        assert fact.source.publisher and fact.source.title and fact.source.citation


def test_both_articles_are_used_for_many_facts(kb):
    by_source = {}
    for fact in kb.facts():
        by_source.setdefault(fact.source.id, []).append(fact)
    assert len(by_source["klearwell"]) >= 20 and len(by_source["innerbloom"]) >= 20


@pytest.mark.parametrize("conflict_id", ["im-onset", "im-duration"])
def test_disagreements_keep_both_sides_attributed(kb, conflict_id):
    facts = [f for f in kb.facts() if f.conflict == conflict_id]
    assert {f.source.id for f in facts} == {"klearwell", "innerbloom"}
    for fact in facts:
        assert fact.source.short_name in fact.text, "a disputed figure must say whose figure it is"
    assert kb.conflict(conflict_id=conflict_id).note


def test_key_figures_from_the_articles_are_present(kb):
    text = " ".join(f.text for f in kb.facts())
    for figure in ("100%", "93%", "4 to 5 minutes", "1 to 2 minutes", "15 minutes", "45 minutes",
                   "30 to 45 minutes", "40 minutes to an hour", "two preparation sessions"):
        assert figure in text


def _words(text: str):
    return re.findall(r"[a-z0-9%]+", text.lower().replace("\u2019", "'"))


@pytest.mark.skipif(not SEEDS_DIR.exists(), reason="shared/seeds not beside the checkout")
def test_facts_are_in_our_own_words(kb):
    """No fact repeats six consecutive words of either source article."""
    n = 6
    seed_grams = set()
    for path in SEEDS_DIR.glob("0*.txt"):
        words = _words(path.read_text(encoding="utf-8"))
        seed_grams |= {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
    for fact in kb.facts(kind=None):  # the direct answers (verdicts) too
        words = _words(fact.text)
        copied = [" ".join(g) for g in (tuple(words[i:i + n]) for i in range(len(words) - n + 1)) if g in seed_grams]
        assert not copied, f"{fact.id} copies the article: {copied[0]!r}"


# ---- each fact reads on its own, and no reply says the same thing twice ----------------------------

def test_every_fact_stands_alone(project_root):
    """Replies are stitched from facts in relevance order: none may lean on a fact before it."""
    from bot.knowledge.curated import back_reference

    curated = load_curated(knowledge_dir=project_root / "knowledge")
    leaning = {f.id: back_reference(f.text) for f in curated.facts if back_reference(f.text)}
    assert not leaning, f"facts that lean on a sentence before them: {leaning}"


@pytest.mark.parametrize("text, words", [
    ("He founded Innerbloom and is its medical director.", "He"),
    ("That is still high next to lozenges or pills.", "That"),
    ("These effects can last a while after a dose.", "These"),
    ("The cannula connects through a longer tube to a bag of ketamine.", "The cannula"),
    ("Both are considered safe in a well-run clinic.", "Both"),
    ("It's over in seconds.", "It"),
    ("Because it acts fast, good preparation matters.", "Because it"),
    ("This means the dose cannot be changed.", "This"),
    ("IM is also regarded as safe.", "also"),
    ("IM uptake is 93%, still high next to pills.", "still"),
    ("Innerbloom gives IV full bioavailability as well.", "as well"),
])
def test_a_back_reference_is_found(text, words):
    from bot.knowledge.curated import back_reference

    assert back_reference(text) == words


@pytest.mark.parametrize("text", [
    "Dr. Ray Rivas founded Innerbloom, a ketamine clinic in San Luis Obispo.",
    "IM can work as well as IV for mood disorders.",
    "Items such as pills deliver less of the dose.",
    "IV and IM both help; the so-called side effects are the same.",
    "Which route suits you depends on what you want from a session.",
])
def test_a_fact_that_stands_alone_is_not_flagged(text):
    from bot.knowledge.curated import back_reference

    assert back_reference(text) is None


@pytest.mark.parametrize("text, message", [
    ("He founded Innerbloom and is its medical director.", "fact 'onset-iv' opens with 'He'"),
    ("That is still high next to lozenges or pills.", "fact 'onset-iv' opens with 'That'"),
    ("The cannula connects through a longer tube to a bag of ketamine.", "fact 'onset-iv' opens with 'The cannula'"),
    ("IM is also fast, within minutes.", "fact 'onset-iv' uses 'also'"),
])
def test_a_fact_leaning_on_the_one_before_is_rejected(tmp_path, project_root, text, message):
    knowledge = _broken_copy(tmp_path, project_root, lambda d: d["facts"][0].update(text=text))
    with pytest.raises(CurationError, match=message):
        load_curated(knowledge_dir=knowledge)


# Content words: what is left of a fact once the words every sentence needs are dropped.
_FUNCTION_WORDS = frozenset("""
    a an the and or but nor of to in on for with by as at from into over after before about than then
    is are be been being was were it its this that these those which who whom what when where how why
    so not no can may might will would should could do does did has have had their there they them
    your you i we our us he she his her also very just only one each any some more most much many
""".split())
NEAR_PARAPHRASE = 0.5  # word-set Jaccard; the worst pair the reviewer saw in one reply scored 0.58


def _content_words(text: str) -> frozenset:
    words = (w.strip("'") for w in re.findall(r"[a-z0-9%']+", text.lower().replace("\u2019", "'")))
    return frozenset(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
                     for w in words if w and w not in _FUNCTION_WORDS)


def _jaccard(a: str, b: str) -> float:
    wa, wb = _content_words(a), _content_words(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


def test_the_paraphrase_measure_catches_a_repeat():
    """The pair a reviewer found said twice in one needles reply (the direct answer and a fact)."""
    said = ("People who dread having an IV line put in, or whose veins are hard to find, often prefer IM: "
            "a single quick injection in the arm.")
    again = "People who are afraid of having an IV line put in, or whose veins are hard to reach, often prefer IM."
    assert _jaccard(said, again) >= NEAR_PARAPHRASE
    assert _jaccard(said, "With IV, most people notice the effects within about 4 to 5 minutes.") < NEAR_PARAPHRASE


def test_no_two_facts_of_a_topic_are_near_paraphrases(kb):
    """A reply composes facts of one topic (the direct answer with them): it must not say one thing twice."""
    from itertools import combinations

    by_topic = {}
    for fact in kb.facts(kind=None):
        by_topic.setdefault(fact.topic, []).append(fact)
    repeats = [
        f"{a.id} ~ {b.id} ({_jaccard(a.text, b.text):.2f})"
        for facts in by_topic.values() for a, b in combinations(facts, 2)
        if _jaccard(a.text, b.text) >= NEAR_PARAPHRASE
    ]
    assert not repeats, f"near-paraphrases in one topic: {repeats}"


def test_facts_that_make_the_same_point_are_known_both_ways(kb):
    """Curated once (knowledge/facts: ``repeats``), stored for both facts."""
    facts = {f.id: f for f in kb.facts(kind=None)}
    needle, deltoid = facts["procedure-im-needle"], facts["procedure-im-deltoid"]
    assert "procedure-im-needle" in deltoid.repeats and "procedure-im-deltoid" in needle.repeats
    assert needle.same_point(deltoid) and deltoid.same_point(needle)
    assert not needle.same_point(facts["procedure-iv-cannula"])
    # the two sides of a disagreement are never "the same point": both are always shown
    sides = [f for f in facts.values() if f.conflict == "im-duration"]
    assert len(sides) == 2 and not sides[0].same_point(sides[1])


def test_queries_filter_by_topic_and_route(kb):
    iv_onset = kb.facts(topic="onset", route="iv")
    assert [f.id for f in iv_onset] == ["onset-iv", "onset-iv-controlled"]
    assert all(f.topic == "onset" for f in kb.facts(topic="onset"))


def test_route_synonyms_cover_lay_words(kb):
    synonyms = kb.route_synonyms()
    for word in ("drip", "bag", "through a vein", "infusion"):
        assert word in synonyms["iv"]
    for word in ("jab", "shot", "needle in the arm", "injection"):
        assert word in synonyms["im"]
    assert "im" not in synonyms["im"], "bare 'im' is usually I'm: only in context"
    assert kb.route_labels() == {"iv": "IV infusion", "im": "IM injection"}


def test_database_url_is_configurable(tmp_path, monkeypatch, project_root):
    from bot.ops.settings import get_settings

    url = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("KB_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        assert get_settings().database_url == url
        build_knowledge_base(knowledge_dir=project_root / "knowledge", database_url=get_settings().database_url)
        assert (tmp_path / "other.db").exists()
        assert get_knowledge_base().facts(topic="peak")
    finally:
        get_settings.cache_clear()


def test_unbuilt_database_says_how_to_build(tmp_path):
    empty = get_knowledge_base(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(KnowledgeBaseMissing, match="python -m bot build"):
        empty.facts()


def test_rebuild_changes_wording_without_retraining(tmp_path, project_root):
    """Editing a fact's text and rebuilding changes the answer: no model is involved."""
    import shutil

    knowledge = tmp_path / "knowledge"
    shutil.copytree(project_root / "knowledge", knowledge)
    path = knowledge / "facts" / "peak.yml"
    data = yaml.safe_load(path.read_text())
    data["facts"][0]["text"] = "Reworded for the test: IV builds to its peak gradually."
    path.write_text(yaml.safe_dump(data))
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    build_knowledge_base(knowledge_dir=knowledge, database_url=url)
    texts = [f.text for f in get_knowledge_base(database_url=url).facts(topic="peak", route="iv")]
    assert texts[0].startswith("Reworded for the test")


def _broken_copy(tmp_path: Path, project_root: Path, mutate) -> Path:
    import shutil

    knowledge = tmp_path / "knowledge"
    shutil.copytree(project_root / "knowledge", knowledge)
    path = knowledge / "facts" / "onset.yml"
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data))
    return knowledge


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["facts"][0].update(source="wikipedia"), "unknown source"),
        (lambda d: d["facts"][0].update(routes=["oral"]), "invalid routes"),
        (lambda d: d["facts"].append(dict(d["facts"][0])), "duplicate fact id"),
        (lambda d: d["facts"][3].pop("conflict") and d["facts"][2].update(conflict="im-onset"), "two sources"),
        (lambda d: d["facts"][0].update(repeats=["no-such-fact"]), "repeats unknown facts"),
    ],
)
def test_inconsistent_curation_is_rejected(tmp_path, project_root, mutate, message):
    knowledge = _broken_copy(tmp_path, project_root, mutate)
    with pytest.raises(CurationError, match=message):
        load_curated(knowledge_dir=knowledge)


# ---- the coverage map: every article sentence is restated by a fact --------------------------------

def test_every_article_sentence_is_restated_by_a_fact(kb, project_root):
    from bot.knowledge.articles import article_sentences

    sources = yaml.safe_load((project_root / "knowledge" / "sources.yml").read_text(encoding="utf-8"))["sources"]
    excepted = {sentence for s in sources for sentence in (s.get("not_restated") or {})}
    restated = {sentence for fact in kb.facts(kind=None) for sentence in fact.restates}
    sentences = [s for s in article_sentences(project_root / "knowledge") if not s.heading]
    assert len(sentences) > 70
    missing = [s.id for s in sentences if s.id not in restated and s.id not in excepted]
    assert not missing, f"article sentences no fact restates: {missing}"
    # Only the title and the website's legal notices are excepted.
    assert excepted <= {"klearwell:1", "innerbloom:45", "innerbloom:46"}


def test_each_fact_restates_a_few_sentences_of_its_own_article(kb):
    for fact in kb.facts(kind=None):
        assert 1 <= len(fact.restates) <= 3, fact.id
        assert all(s.startswith(fact.source.id + ":") for s in fact.restates), fact.id


def test_the_article_splitter_is_stable():
    from bot.knowledge.articles import split_article

    text = "Title line\nFirst one. Second aims.IV third? Dr. Rivas writes!\nShort heading\n"
    sentences = split_article(text, source="x")
    assert [s.text for s in sentences] == [
        "Title line", "First one.", "Second aims.", "IV third?", "Dr. Rivas writes!", "Short heading"]
    assert [s.heading for s in sentences] == [True, False, False, False, False, True]
    assert sentences[2].id == "x:3"


def test_a_fact_must_name_real_sentences(project_root, tmp_path):
    import shutil

    knowledge = tmp_path / "knowledge"
    shutil.copytree(project_root / "knowledge", knowledge)
    path = knowledge / "facts" / "onset.yml"
    path.write_text(path.read_text().replace("restates: [innerbloom:8]", "restates: [innerbloom:99]", 1))
    with pytest.raises(CurationError, match="unknown article sentences"):
        load_curated(knowledge_dir=knowledge)


@pytest.mark.parametrize("topic", sorted(TOPICS - {"conditions"}))
def test_comparisons_have_a_one_sentence_direct_answer(kb, topic):
    from bot.knowledge.records import VERDICT

    verdict, = kb.facts(topic=topic, kind=VERDICT)
    assert verdict.routes == ("iv", "im") and verdict.text.count(". ") == 0



def test_the_snapshot_answers_every_query_as_the_database_does(kb):
    from bot.knowledge import KnowledgeSnapshot
    from bot.knowledge.records import ROUTES, VERDICT

    snapshot = KnowledgeSnapshot(kb)
    assert snapshot.topics() == kb.topics()
    assert snapshot.sources() == kb.sources()
    assert snapshot.route_synonyms() == kb.route_synonyms() and snapshot.route_labels() == kb.route_labels()
    for topic in [None] + [t.id for t in kb.topics()]:
        for route in (None,) + ROUTES:
            for kind in (None, VERDICT, "fact"):
                assert snapshot.facts(topic=topic, route=route, kind=kind) == kb.facts(topic=topic, route=route, kind=kind)
    conflicts = {f.conflict for f in kb.facts(kind=None) if f.conflict}
    assert conflicts and all(snapshot.conflict(conflict_id=c) == kb.conflict(conflict_id=c) for c in conflicts)


def _build(tmp_path, *extra):
    import os
    import subprocess
    import sys

    from bot.ops.settings import PROJECT_ROOT

    env = {**os.environ, "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'kb.db'}",
           "KB_SPACY_PIPELINE": str(tmp_path / "pipeline"), "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run([sys.executable, "-m", "bot", "build", *extra], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_build_runs_only_when_its_sources_changed(tmp_path):
    assert "Knowledge base:" in _build(tmp_path)
    assert "unchanged" in _build(tmp_path)          # every ./run.sh command passes here
    assert "Knowledge base:" in _build(tmp_path, "--force")


def test_a_rebuild_never_pulls_the_tables_from_under_a_reader(tmp_path):
    """The SQLite file is built beside the old one and swapped in: a connection that was open
    during the rebuild still reads every fact; a new one reads the new file."""
    import sqlite3

    _build(tmp_path)
    reader = sqlite3.connect(tmp_path / "kb.db")
    before = reader.execute("select count(*) from facts").fetchone()[0]
    old_inode = (tmp_path / "kb.db").stat().st_ino
    _build(tmp_path, "--force")
    assert reader.execute("select count(*) from facts").fetchone()[0] == before > 0
    assert (tmp_path / "kb.db").stat().st_ino != old_inode
    fresh = sqlite3.connect(tmp_path / "kb.db")
    assert fresh.execute("select count(*) from fact_questions").fetchone()[0] > 1000
    assert not list(tmp_path.glob(".kb.db.*.building"))
