"""Rasa's own checks: data validation and the conversation tests."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # Rasa's command line: minutes, so not in the fast tier


def rasa(*args: str, cwd, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    return subprocess.run(
        [sys.executable, "-m", "bot.rasa.main", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_rasa_data_validate(project_root):
    result = rasa("data", "validate", "--domain", "domain.yml", "--data", "data", cwd=project_root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_conversation_tests_pass(project_root, trained_model, tmp_path):
    """Every topic, follow-ups, crisis mid-conversation, out of scope and advice (tests/conversations)."""
    result = rasa(
        "test", "--model", str(trained_model), "--stories", "tests/conversations",
        "--fail-on-prediction-errors", "--out", str(tmp_path / "results"),
        cwd=project_root,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "WrongPredictionException" not in output
