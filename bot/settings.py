"""The one place that reads configuration.

Every setting comes from an environment variable with a safe default, so the
assistant runs from a clean checkout without any configuration at all.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Runtime configuration for the assistant and its tools."""

    knowledge_dir: Path
    database_url: str
    spacy_pipeline_path: Path
    models_dir: Path
    # Per-clinic contact details used in crisis and referral replies.
    clinic_name: str
    clinic_phone: str
    emergency_number: str
    crisis_line: str
    # A search hit must score at least this (BM25) to be used as an answer.
    search_min_score: float
    # Where the servers listen (loopback by default: put a reverse proxy in front to expose Rasa).
    rasa_interface: str
    rasa_port: int
    action_server_host: str
    action_server_port: int
    # Longest message a patient may send (longer ones get a polite reply; NLU never sees them).
    message_max_chars: int
    # The demo clinic page with the chat widget, and the Rasa URL the widget talks to.
    web_interface: str
    web_port: int
    widget_server_url: str
    # Phone channels (off unless their secrets are set). Chat ids and phone numbers are stored
    # only as keyed hashes with channel_id_key.
    channel_id_key: str = field(repr=False)
    telegram_bot_token: str = field(repr=False)
    telegram_secret_token: str = field(repr=False)
    telegram_api_url: str
    twilio_account_sid: str
    twilio_auth_token: str = field(repr=False)
    twilio_api_url: str
    twilio_webhook_url: str
    # Optional SQLite file for Rasa's tracker store (default: in memory).
    tracker_store_db: str


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _clinic_defaults() -> dict:
    """Patient-facing clinic wording lives in clinic.yml, not in Python."""
    import yaml

    with (PROJECT_ROOT / "clinic.yml").open(encoding="utf-8") as handle:
        return {key: str(value) for key, value in (yaml.safe_load(handle) or {}).items()}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once per process."""
    build_dir = PROJECT_ROOT / "build"
    clinic = _clinic_defaults()
    rasa_port = int(_env("RASA_PORT", "5005"))
    return Settings(
        knowledge_dir=Path(_env("KB_KNOWLEDGE_DIR", str(PROJECT_ROOT / "knowledge"))),
        database_url=_env("KB_DATABASE_URL", f"sqlite:///{build_dir / 'knowledge.db'}"),
        spacy_pipeline_path=Path(_env("KB_SPACY_PIPELINE", str(build_dir / "spacy_pipeline"))),
        models_dir=Path(_env("RASA_MODELS_DIR", str(PROJECT_ROOT / "models"))),
        clinic_name=_env("CLINIC_NAME", clinic["clinic_name"]),
        clinic_phone=_env("CLINIC_PHONE", clinic["clinic_phone"]),
        emergency_number=_env("CLINIC_EMERGENCY_NUMBER", clinic["emergency_number"]),
        crisis_line=_env("CLINIC_CRISIS_LINE", clinic["crisis_line"]),
        search_min_score=float(_env("KB_SEARCH_MIN_SCORE", "3.5")),
        rasa_interface=_env("RASA_INTERFACE", "127.0.0.1"),
        rasa_port=rasa_port,
        action_server_host=_env("ACTION_SERVER_HOST", "127.0.0.1"),
        action_server_port=int(_env("ACTION_SERVER_PORT", "5055")),
        message_max_chars=int(_env("MESSAGE_MAX_CHARS", "500")),
        web_interface=_env("WEB_INTERFACE", "127.0.0.1"),
        web_port=int(_env("WEB_PORT", "8080")),
        widget_server_url=_env("WIDGET_SERVER_URL", f"http://127.0.0.1:{rasa_port}"),
        channel_id_key=_env("CHANNEL_ID_KEY", ""),
        telegram_bot_token=_env("TELEGRAM_BOT_TOKEN", ""),
        telegram_secret_token=_env("TELEGRAM_SECRET_TOKEN", ""),
        telegram_api_url=_env("TELEGRAM_API_URL", "https://api.telegram.org"),
        twilio_account_sid=_env("TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=_env("TWILIO_AUTH_TOKEN", ""),
        twilio_api_url=_env("TWILIO_API_URL", "https://api.twilio.com"),
        twilio_webhook_url=_env("TWILIO_WEBHOOK_URL", ""),
        tracker_store_db=_env("TRACKER_STORE_DB", ""),
    )
