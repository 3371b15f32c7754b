"""The project's spaCy pipeline: route synonyms from the knowledge base, lemmas."""
from __future__ import annotations

import pytest

from bot.understanding.nlp import lemmas, routes_in


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Which is faster, IV or IM?", ["iv", "im"]),
        ("is more absorbed with the drip?", ["iv"]),
        ("how long does the shot last?", ["im"]),
        ("what about the injection?", ["im"]),
        ("and IM?", ["im"]),
        ("is IM safe", ["im"]),
        ("IM injection or infusion", ["im", "iv"]),
        ("does the jab hurt", ["im"]),
        ("a needle in the arm", ["im"]),
        ("they put it through a vein", ["iv"]),
        ("what's in the bag", ["iv"]),
        ("Intravenous ketamine", ["iv"]),
        ("intramuscular ketamine", ["im"]),
        ("I.V. or I.M.?", ["iv", "im"]),
        ("in the deltoid", ["im"]),
        ("intravenus", ["iv"]),
    ],
)
def test_route_synonyms_are_recognised(nlp, text, expected):
    assert routes_in(nlp, text) == expected


@pytest.mark.parametrize(
    "text",
    ["im scared of needles", "Im new to this", "im worried about side effects", "which is faster?", "what if im nervous"],
)
def test_no_route_where_none_is_named(nlp, text):
    assert routes_in(nlp, text) == []


def test_lookup_lemmatizer_is_loaded(nlp):
    assert "lemmatizer" in nlp.pipe_names and "entity_ruler" in nlp.pipe_names
    assert lemmas(nlp, "the injections lasted longer") == ["injection", "last", "long"]


def test_entity_ruler_patterns_survive_saving(nlp, kb):
    ruler = nlp.get_pipe("entity_ruler")
    phrases = sum(len(v) for v in kb.route_synonyms().values())
    assert len(ruler.patterns) == phrases


def test_pipeline_loads_as_rasa_loads_it(nlp, tmp_path):
    """Rasa's SpacyNLP loads a pipeline by path and rejects one without a path."""
    from rasa.nlu.utils.spacy_utils import SpacyNLP

    model = SpacyNLP.load_model(str(nlp.path))
    SpacyNLP.ensure_proper_language_model(model.model)
    assert routes_in(model.model, "the drip") == ["iv"]
