"""Settings that guard the doors: secret keys (at least 32 characters, never a placeholder such as
the example file's CHANGE-ME), the staff cookie (Secure unless turned off) and the REST token."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from bot.ops.settings import PROJECT_ROOT, Settings, describe

KEYS = ["CHANNEL_ID_KEY", "WEBCHAT_SESSION_KEY", "RECORDS_ID_KEY", "REST_TOKEN"]
GOOD = "9f1c2e7a4b6d08e35c7a91f2b4d6e8a0"  # 32 characters, as `openssl rand -hex 16` gives


def settings_from_env(monkeypatch, env: dict) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        Settings()
    except ValidationError as error:
        return describe(error)
    return ""


@pytest.mark.parametrize("name", KEYS)
@pytest.mark.parametrize("value, says", [
    ("CHANGE-ME", "placeholder"),
    ("changeme-changeme-changeme-changeme", "placeholder"),
    ("your-secret-key-here-0123456789abcdef", "placeholder"),
    ("short-key-0123456789", "at least 32"),
    ("ab" * 20, "random"),
])
def test_placeholder_short_and_patterned_keys_are_refused(monkeypatch, name, value, says):
    message = settings_from_env(monkeypatch, {name: value})
    assert message.startswith("invalid configuration") and f"{name}: " in message and says in message, message
    assert value == "CHANGE-ME" or value not in message  # a refused key is never repeated in the message
    assert "openssl rand -hex 32" in message


@pytest.mark.parametrize("name", KEYS)
def test_a_random_key_of_32_characters_is_accepted(monkeypatch, name):
    assert settings_from_env(monkeypatch, {name: GOOD}) == ""


def test_the_deploy_example_environment_is_refused_until_its_placeholders_are_replaced(monkeypatch):
    from tests.test_deploy import DEPLOY, env_file

    example = env_file(DEPLOY / "clinic.env.example")
    assert {"CHANNEL_ID_KEY", "WEBCHAT_SESSION_KEY", "RECORDS_ID_KEY"} <= set(example)
    message = settings_from_env(monkeypatch, example)
    for name in ("CHANNEL_ID_KEY", "WEBCHAT_SESSION_KEY", "RECORDS_ID_KEY", "DATABASE_URL", "REDIS_URL"):
        assert f"{name}: " in message, message
    assert example.get("STAFF_COOKIE_SECURE") == "true"


def test_the_staff_cookie_is_secure_unless_turned_off(monkeypatch):
    monkeypatch.delenv("STAFF_COOKIE_SECURE", raising=False)
    assert Settings().staff_cookie_secure is True
    monkeypatch.setenv("STAFF_COOKIE_SECURE", "false")
    assert Settings().staff_cookie_secure is False
    message = settings_from_env(monkeypatch, {"STAFF_COOKIE_SECURE": "auto"})
    assert "STAFF_COOKIE_SECURE: must be true or false" in message


def test_a_start_with_a_placeholder_key_stops_with_one_clear_line(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path), "PYTHONPATH": str(PROJECT_ROOT), "WEBCHAT_SESSION_KEY": "CHANGE-ME"}
    result = subprocess.run([sys.executable, "-m", "bot", "purge", "--dry-run"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Cannot start: invalid configuration" in result.stderr and "WEBCHAT_SESSION_KEY: is a placeholder" in result.stderr
    assert "Traceback" not in result.stderr
