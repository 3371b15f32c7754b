"""The independent evaluation sets: well formed, big and varied enough, and separate from every
piece of training data (the NLU examples and the crisis classifier's examples) - exactly and
nearly. The locked parts are checked here by code only; their texts are never printed."""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

import pytest

from bot.crisis.classifier import training_examples as crisis_training
from bot.evaluation.dataset import normalise, training_examples as nlu_training
from bot.evaluation.sets import (
    CRISIS_CATEGORIES,
    PARTS,
    VOICES,
    load_crisis_set,
    load_patient_set,
)

MESSAGE_CRISIS_CATEGORIES = [c for c in CRISIS_CATEGORIES if c not in ("emerging", "mid_conversation")]
FIRST_SET_CATEGORIES = ("indirect", "explicit_slang", "self_harm", "overdose", "other_person", "medical_warning",
                        "buried", "emerging", "mid_conversation")


def _words(text: str) -> frozenset:
    return frozenset(re.findall(r"[a-z0-9']+", text.lower()))


class NearCopies:
    """Word sets of five words or more that overlap (Jaccard) at least ``threshold`` with a given
    one - the same answers as comparing every pair, found by prefix filtering: two sets that
    similar share a word among the rarest |s| - ceil(threshold * |s|) + 1 words of each."""

    def __init__(self, sets, threshold: float = 0.8) -> None:
        self.threshold = threshold
        self.sets = [s for s in sets if len(s) >= 5]
        frequency = Counter(word for s in self.sets for word in s)
        self._order = lambda word: (frequency.get(word, 0), word)
        self._index = defaultdict(set)
        for position, words in enumerate(self.sets):
            for word in self._prefix(words):
                self._index[word].add(position)

    def _prefix(self, words):
        size = len(words) - math.ceil(self.threshold * len(words) - 1e-9) + 1
        return sorted(words, key=self._order)[:size]

    def near(self, words) -> bool:
        candidates = set().union(*(self._index.get(word, ()) for word in self._prefix(words)))
        return any(len(words & self.sets[c]) / len(words | self.sets[c]) >= self.threshold for c in candidates)


def test_near_copies_are_found_as_by_comparing_every_pair():
    corpus = [_words(t) for t in ("how long does the drip take to work", "how long does the shot take to work",
                                  "is the needle in the arm very painful for most people", "what about the other one",
                                  "can I drive home after my first infusion session", "one two three four five six")]
    queries = [_words(t) for t in ("how long does the drip take to work for me", "is the needle in the arm painful",
                                   "can I drive home after my first infusion", "one two three four five six seven",
                                   "something else entirely with five words")]
    index = NearCopies(corpus)
    for words in queries:
        brute = any(len(words & o) / len(words | o) >= 0.8 for o in corpus if len(o) >= 5)
        assert index.near(words) == brute, sorted(words)
    assert [index.near(q) for q in queries].count(True) >= 2  # the sample has near copies to find


@pytest.fixture(scope="module")
def training():
    from bot.knowledge.curated import load_curated
    from bot.ops.settings import PROJECT_ROOT

    fact_questions = [q for f in load_curated(knowledge_dir=PROJECT_ROOT / "knowledge").facts for q in f.questions]
    texts = (list(nlu_training()) + [normalise(text) for text, _ in crisis_training()]
             + [normalise(text) for text in fact_questions])
    return set(texts), NearCopies([_words(t) for t in texts])


def _evaluation_texts(part):
    from bot.evaluation.staff import load_staff_set

    return ([t.text for t in load_patient_set(part).turns] + [t.text for t in load_crisis_set(part).turns]
            + [t.text for t in load_crisis_set(part, family="crisis2").turns]
            + [t.text for t in load_staff_set(part)])


@pytest.mark.parametrize("part", PARTS)
def test_no_evaluation_message_is_in_the_training_data(training, part):
    exact, _ = training
    leaked = [i for i, text in enumerate(_evaluation_texts(part)) if normalise(text) in exact and len(text.split()) > 2]
    assert not leaked, f"{len(leaked)} {part} messages are training examples (positions {leaked[:10]})"


@pytest.mark.parametrize("part", PARTS)
def test_no_evaluation_message_is_a_near_copy_of_a_training_example(training, part):
    """Word sets of messages of five words or more overlap less than 80% with any training example."""
    _, near_copies = training
    near = [position for position, text in enumerate(_evaluation_texts(part))
            if len(_words(text)) >= 5 and near_copies.near(_words(text))]
    assert not near, f"{len(near)} {part} messages nearly copy a training example (positions {near[:10]})"


def test_dev_and_locked_do_not_overlap():
    dev = {normalise(t) for t in _evaluation_texts("dev")}
    locked = {normalise(t) for t in _evaluation_texts("locked")}
    assert not (dev & locked)


@pytest.mark.parametrize("part", PARTS)
def test_the_patient_sets_have_every_voice_and_cover_every_article_sentence(part):
    from bot.knowledge.articles import article_sentences

    patients = load_patient_set(part)
    turns = patients.turns
    assert len(turns) >= (200 if part == "dev" else 300)
    voices = Counter(t.voice for t in turns)
    assert set(voices) == set(VOICES) and min(voices.values()) >= 20
    expects = Counter(t.expect for t in turns)
    assert expects["decline"] >= 15 and expects["advice"] >= 15
    assert sum(len(t.asks) == 2 for t in turns) >= 20 and len(patients.conversations) >= 9
    asked = {s for t in turns for a in t.asks for s in a.sentences}
    content = {s.id for s in article_sentences() if not s.heading}
    assert content - asked <= {"klearwell:1", "innerbloom:43", "innerbloom:44", "innerbloom:45", "innerbloom:46"}


def test_the_patient_sets_together_hold_400_messages():
    assert sum(len(load_patient_set(part).turns) for part in PARTS) >= 400


@pytest.mark.parametrize("part", PARTS)
def test_the_crisis_sets_cover_every_category(part):
    crisis = load_crisis_set(part)
    turns = crisis.turns
    per_category = Counter(t.category for t in turns if t.expect == "crisis")
    for category in FIRST_SET_CATEGORIES:
        assert per_category[category] >= (10 if part == "dev" else 20), category
    assert Counter(t.help for t in turns if t.expect == "crisis").keys() == {"self", "medical", "other"}
    ordinary = Counter(t.category for t in turns if t.expect == "ordinary")
    for category in ("idiom", "quote", "side_effect", "safety_question", "emotional", "general"):
        assert ordinary[category] >= 20, category


def test_the_crisis_sets_together_are_big_enough():
    turns = [t for part in PARTS for t in load_crisis_set(part).turns]
    per_category = Counter(t.category for t in turns if t.expect == "crisis")
    assert sum(per_category.values()) >= 250 and min(per_category.values()) >= 25
    assert sum(t.expect == "ordinary" for t in turns) >= 400


ROUND_TWO_CRISIS = ("formal_elderly", "means_as_dose", "minor", "online_other", "for_a_friend",
                    "first_person_overdose", "calm_warning", "logistics_buried", "explicit_slang", "self_harm",
                    "other_person", "emerging", "mid_conversation")


def test_the_second_crisis_set_is_as_big_as_issue_18_asks():
    """At least 320 crisis messages, at least 30 per category, and 500 ordinary messages incl.
    questions about the subject and personal medical questions - in dev and locked parts."""
    turns = [t for part in PARTS for t in load_crisis_set(part, family="crisis2").turns]
    per_category = Counter(t.category for t in turns if t.expect == "crisis")
    assert sum(per_category.values()) >= 320
    for category in ROUND_TWO_CRISIS:
        assert per_category[category] >= 30, category
    ordinary = Counter(t.category for t in turns if t.expect == "ordinary" and t.category not in ("emerging", "mid_conversation"))
    assert sum(ordinary.values()) >= 500
    assert ordinary["topic_question"] >= 60 and ordinary["personal_medical"] >= 60
    for part in PARTS:
        assert load_crisis_set(part, family="crisis2").turns, part


# ---- the grouping set (evaluation/grouping/, bot/evaluation/grouping.py) ----------------------------

def test_the_grouping_set_loads_and_its_parts_are_apart():
    from bot.evaluation.grouping import load_grouping_set

    dev, locked = load_grouping_set("dev"), load_grouping_set("locked")
    assert len(dev) >= 100 and len(locked) >= 100
    assert not {normalise(q) for q, _ in dev} & {normalise(q) for q, _ in locked}
    # paraphrase groups, not only single questions
    assert max(Counter(label for _, label in locked).values()) >= 3


def test_grouping_purity_and_recall_as_the_report_defines_them():
    from bot.evaluation.grouping import score

    labels = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b2": "b", "c1": "c"}
    perfect = score([["a1", "a2", "a3"], ["b1", "b2"], ["c1"]], labels)
    assert (perfect["purity"], perfect["recall"]) == (1.0, 1.0)
    singletons = score([[q] for q in labels], labels)
    assert singletons["purity"] == 1.0 and singletons["recall"] == round(3 / 6, 4)  # one of each label's questions
    lumped = score([list(labels)], labels)
    assert lumped["recall"] == 1.0 and lumped["purity"] == round(3 / 6, 4)  # the biggest label's share
    mixed = score([["a1", "a2", "b1"], ["a3"], ["b2", "c1"]], labels)
    assert (mixed["purity"], mixed["recall"]) == (round(4 / 6, 4), round(4 / 6, 4))
