"""The action server runs in its own environment without Rasa or TensorFlow (.venv-actions,
requirements-actions.txt), set up by ./run.sh and ./test.sh (issue 22)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.ops.settings import PROJECT_ROOT

ACTIONS_PYTHON = PROJECT_ROOT / ".venv-actions" / "bin" / "python"


def test_the_actions_environment_imports_every_action_without_rasa_or_tensorflow():
    assert ACTIONS_PYTHON.exists(), "the set-up makes .venv-actions"
    code = ("import sys, bot.ops.action_server, actions.knowledge, actions.safety, actions.feedback, "
            "actions.conversation; from bot.answers.assistant import get_assistant; "
            "print(sorted(m for m in ('tensorflow', 'rasa', 'keras', 'jax') if m in sys.modules))")
    result = subprocess.run([str(ACTIONS_PYTHON), "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONWARNINGS": "ignore"},
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    for package in ("tensorflow", "rasa"):
        found = subprocess.run([str(ACTIONS_PYTHON), "-c", f"import importlib.util as u; print(u.find_spec('{package}'))"],
                               capture_output=True, text=True, timeout=60)
        assert found.stdout.strip() == "None", package  # not even installed there


@pytest.mark.servers
def test_the_running_action_server_is_that_environment_and_never_loads_tensorflow(running_assistant):
    pid = running_assistant.pid("actions")
    command = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    assert command[0] == str(ACTIONS_PYTHON), command  # (its exe is the base interpreter the venv links to)
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "tensorflow" not in maps and "/rasa/" not in maps
    # and it answers (the assistant's reply came through it)
    replies = running_assistant.say("env-check", "how long does the IM injection last?")
    assert any("Source:" in m.get("text", "") for m in replies)
