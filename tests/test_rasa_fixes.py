"""The project's fix to Rasa's action-response validation accepts and rejects exactly as Rasa does."""
from __future__ import annotations

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from bot.rasa_main import _validate_action_result

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


@pytest.mark.parametrize("result", VALID)
def test_valid_responses_are_accepted_like_rasa_does(result):
    original = RemoteAction("action_x", None)
    assert RemoteAction._validate_action_result(original, result) is True
    assert _validate_action_result(original, result) is True


@pytest.mark.parametrize("result", INVALID)
def test_invalid_responses_are_rejected_like_rasa_does(result):
    action = RemoteAction("action_x", None)
    with pytest.raises(jsonschema.ValidationError) as theirs:
        RemoteAction._validate_action_result(action, result)
    with pytest.raises(jsonschema.ValidationError) as ours:
        _validate_action_result(action, result)
    assert ours.value.message == theirs.value.message
