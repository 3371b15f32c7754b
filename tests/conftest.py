"""Shared fixtures: the real knowledge base (SQLite), the real spaCy pipeline, the real
domain, rasa-sdk dispatchers and trackers, the trained model and the running servers."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import pytest
import yaml

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# In-process tests (actions, records) write their runtime data to a folder of their own, never to
# the project's var/ (the servers the tests start get folders of their own too).
if "DATA_DIR" not in os.environ:
    import tempfile

    os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="clinic-tests-")

from bot.answers.assistant import Assistant  # noqa: E402
from bot.knowledge import SqlKnowledgeBase, get_knowledge_base  # noqa: E402
from bot.knowledge.build import build_knowledge_base  # noqa: E402
from bot.understanding.nlp import build_pipeline, load_pipeline  # noqa: E402
from bot.ops.settings import PROJECT_ROOT, get_settings  # noqa: E402

SEEDS_DIR = PROJECT_ROOT.parent / "shared" / "seeds"

# Fixtures that start real servers: a test using one (directly or through another fixture) is
# marked ``servers``, so the fast tier (`./test.sh --fast`: -m "not servers and not slow") leaves it out.
SERVER_FIXTURES = frozenset({"running_assistant", "healthy_assistant", "running_cluster", "healthy_cluster", "web"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def kb_url(tmp_path_factory) -> str:
    """A freshly built knowledge base in a temporary SQLite file."""
    path = tmp_path_factory.mktemp("kb") / "knowledge.db"
    url = f"sqlite:///{path}"
    build_knowledge_base(knowledge_dir=PROJECT_ROOT / "knowledge", database_url=url)
    return url


@pytest.fixture(scope="session")
def kb(kb_url) -> SqlKnowledgeBase:
    return get_knowledge_base(database_url=kb_url)


@pytest.fixture(scope="session")
def nlp(kb, tmp_path_factory):
    """The project's spaCy pipeline, built from the test knowledge base and loaded from disk."""
    path = build_pipeline(synonyms=kb.route_synonyms(), output=tmp_path_factory.mktemp("spacy") / "pipeline")
    return load_pipeline(str(path))


@pytest.fixture(scope="session")
def assistant(kb, nlp) -> Assistant:
    return Assistant(knowledge_base=kb, settings=get_settings(), nlp_loader=lambda: nlp)


@pytest.fixture(scope="session")
def domain_dict() -> Dict[str, Any]:
    with (PROJECT_ROOT / "domain.yml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def rasa_domain():
    from rasa.shared.core.domain import Domain

    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


@pytest.fixture
def dispatcher():
    from rasa_sdk.executor import CollectingDispatcher

    return CollectingDispatcher()


def make_tracker(
    *,
    text: str = "",
    intent: Optional[str] = None,
    confidence: float = 0.99,
    routes: Iterable[str] = (),
    slots: Optional[Dict[str, Any]] = None,
):
    """A rasa-sdk Tracker whose latest message has this intent and route entities."""
    from rasa_sdk import Tracker

    entities = [{"entity": "route", "value": r, "extractor": "RouteEntityExtractor"} for r in routes]
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence} if intent else {},
        "entities": entities,
    }
    return Tracker(
        sender_id="test-patient",
        slots={"topic": None, "last_route": None, **(slots or {})},
        latest_message=latest,
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


@pytest.fixture
def tracker_for():
    return make_tracker


@pytest.fixture(scope="session")
def render(rasa_domain):
    """Render dispatched messages with the server's response generator (clinic values filled in)."""
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.rasa.nlg import ClinicResponses
    from tests.clients import run_async

    generator = ClinicResponses(domain=rasa_domain)
    rasa_tracker = DialogueStateTracker("render", rasa_domain.slots)

    def _render(messages: List[Dict[str, Any]], channel: str = "rest") -> List[Dict[str, Any]]:
        rendered = []
        for message in messages:
            values = {k: v for k, v in message.items() if k not in ("response", "template") and v is not None}
            out = run_async(generator.generate(message["response"], rasa_tracker, channel, **values))
            assert out is not None, f"response {message['response']} is not in domain.yml"
            rendered.append(out)
        return rendered

    return _render


# --- the trained model and the running servers ------------------------------------------

@pytest.fixture(scope="session")
def built_project() -> None:
    """The default knowledge base and spaCy pipeline (what the servers load), freshly built."""
    from bot.ops.cli import cmd_build

    assert cmd_build(None) == 0


@pytest.fixture(scope="session")
def trained_model(built_project) -> Path:
    """The model for the current config and data: trained at most once per run."""
    from bot.ops.training import ensure_model

    return ensure_model()


@pytest.fixture(scope="session")
def telegram_api():
    from tests.clients import TOKEN
    from tests.standins import TelegramBotApi

    api = TelegramBotApi(TOKEN)
    yield api
    api.close()


@pytest.fixture(scope="session")
def twilio_api():
    from tests.clients import ACCOUNT, AUTH
    from tests.standins import TwilioApi

    api = TwilioApi(ACCOUNT, AUTH)
    yield api
    api.close()


@pytest.fixture(scope="session")
def running_assistant(trained_model, telegram_api, twilio_api, tmp_path_factory):
    """The whole assistant, started by the real launcher (`python -m bot serve`) under its
    supervisor, with every channel on: REST, web chat, and Telegram and Twilio against local
    stand-ins of their APIs. Shared by every end-to-end test (one start per run)."""
    from bot.ops.harness import start_assistant
    from tests.clients import phone_env

    # The retention purge runs every few seconds here, so that a test can wait for it; a staff
    # sign-in address is locked out after 4 failures and a user name's wait grows to 1 s at most
    # (tests/test_dashboard.py).
    env = {**phone_env(telegram_api, twilio_api), "PURGE_INTERVAL_MINUTES": "0.05",
           "STAFF_LOCKOUT_ATTEMPTS": "4", "STAFF_LOGIN_DELAY_MAX_SECONDS": "1"}
    with start_assistant(tmp_path_factory.mktemp("serve") / "serve.log", extra_env=env) as running:
        yield running


@pytest.fixture
def healthy_assistant(running_assistant):
    """The shared assistant, and afterwards every service answering again (for tests that
    stop or kill one of its processes)."""
    yield running_assistant
    running_assistant.supervisorctl("start", "all")
    wait_until(lambda: running_assistant.health().get("status") == "ok", timeout=180,
               what="every service to be healthy again")


def wait_until(condition, *, timeout: float, what: str, interval: float = 0.2):
    """Poll ``condition`` until it is true (returning its value) or fail after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


# --- the cluster profile: PostgreSQL, Redis, haproxy and two Rasa instances -------------------------

def cluster_packages_missing() -> List[str]:
    from bot.ops.cluster import ClusterError, executable, postgres_bindir

    missing = []
    for check, package in ((postgres_bindir, "postgresql"), (lambda: executable("redis-server", "redis-server"), "redis-server"),
                           (lambda: executable("haproxy", "haproxy"), "haproxy")):
        try:
            check()
        except ClusterError:
            missing.append(package)
    return missing


def start_cluster_for_tests(extra_env: Optional[Dict[str, str]] = None):
    """`python -m bot serve --cluster` with its own PostgreSQL and Redis in a temporary data folder,
    on free ports (bot.ops.harness.temporary_cluster), its REST channel requiring a token
    (tests.clients.REST_TOKEN); skipped, loudly, without the Debian packages."""
    from bot.ops.harness import temporary_cluster
    from tests.clients import REST_TOKEN

    missing = cluster_packages_missing()
    if missing:
        pytest.skip(f"CLUSTER TESTS SKIPPED: Debian packages not installed: {' '.join(missing)} "
                    "(./test.sh installs them when it has root or sudo)")
    return temporary_cluster({"REST_TOKEN": REST_TOKEN, **(extra_env or {})})


@pytest.fixture(scope="session")
def running_cluster(trained_model, telegram_api, twilio_api):
    """The cluster profile started by the real launcher, every channel on (phone channels against
    the stand-ins). Shared by every cluster test (one start per run)."""
    from tests.clients import phone_env

    with start_cluster_for_tests(phone_env(telegram_api, twilio_api)) as cluster:
        yield cluster


@pytest.fixture
def healthy_cluster(running_cluster):
    """The shared cluster, and afterwards every service answering again (for tests that stop or
    kill one of its processes)."""
    yield running_cluster
    running_cluster.supervisorctl("start", "all")
    wait_until(lambda: running_cluster.health().get("status") == "ok", timeout=180,
               what="every service of the cluster to be healthy again")
