"""bot/rasa/patches.py: the only patches of Rasa's code. They refuse another Rasa version, and
the action-response validation accepts and rejects exactly as Rasa's own does."""
from __future__ import annotations

import jsonschema
import pytest
import rasa
from rasa.core.actions.action import RemoteAction
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import FailSafeTrackerStore

from bot.rasa import patches as rasa_patches
from bot.rasa.patches import UnsupportedRasa, check_rasa_version, validate_action_result

VALID = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "topic", "value": "onset"}], "responses": [{"response": "utter_kb_answer"}]},
    {},
]
INVALID = [
    {"events": [{"event": "slot", "name": 3}]},
    {"events": "not a list"},
    {"responses": ["not an object"]},
    {"events": [{"event": "no-such-event"}]},
]
rasas_own = rasa_patches.original(RemoteAction, "_validate_action_result")


@pytest.mark.parametrize("result", VALID)
def test_valid_responses_are_accepted_like_rasa_does(result):
    action = RemoteAction("action_x", None)
    assert rasas_own(action, result) is True
    assert validate_action_result(action, result) is True


@pytest.mark.parametrize("result", INVALID)
def test_invalid_responses_are_rejected_like_rasa_does(result):
    action = RemoteAction("action_x", None)
    with pytest.raises(jsonschema.ValidationError) as theirs:
        rasas_own(action, result)
    with pytest.raises(jsonschema.ValidationError) as ours:
        validate_action_result(action, result)
    assert ours.value.message == theirs.value.message


def test_the_patches_are_for_the_installed_rasa_and_refuse_another_version():
    assert rasa.__version__ == rasa_patches.RASA_VERSION
    check_rasa_version()
    for other in ("3.6.20", "3.6.22", "3.7.0", "4.0.0"):
        with pytest.raises(UnsupportedRasa, match=other):
            check_rasa_version(other)


def test_applying_the_patches_on_another_rasa_changes_nothing(monkeypatch):
    before = {name: MessageProcessor.__dict__[name] for name in ("handle_message", "save_tracker",
                                                                 "_parse_message_with_graph")}
    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    with pytest.raises(UnsupportedRasa):
        rasa_patches.apply()
    assert {name: MessageProcessor.__dict__[name] for name in before} == before


def test_only_the_listed_methods_are_patched_and_applying_twice_wraps_once():
    rasa_patches.apply()
    rasa_patches.apply()
    handle = MessageProcessor.__dict__["handle_message"]
    assert getattr(handle, "__patched_by_bot__", False)
    assert not getattr(handle.__wrapped__, "__patched_by_bot__", False)  # Rasa's own, wrapped once
    for owner, names in ((RemoteAction, ("run", "_validate_action_result")),
                         (FailSafeTrackerStore, ("retrieve", "retrieve_full_tracker", "save"))):
        for name in names:
            assert getattr(owner.__dict__[name], "__patched_by_bot__", False), name
    # the NLU parse and the tracker save are Rasa's own: graph components and the tracker store do that work
    for name in ("save_tracker", "_parse_message_with_graph", "parse_message"):
        assert not getattr(MessageProcessor.__dict__[name], "__patched_by_bot__", False), name
