"""The cluster profile on one machine: ``python -m bot serve --cluster`` (``./run.sh cluster``).

    haproxy on RASA_PORT ─┬─ Rasa instance 1 (RASA_INSTANCE_PORT)     ── action server 1 (ACTION_SERVER_PORT)
                          ├─ Rasa instance 2 (RASA_INSTANCE_PORT + 1) ── action server 2 (ACTION_SERVER_PORT + 1)
                          └─ ...                          all sharing PostgreSQL and Redis

* PostgreSQL holds the conversations (Rasa's tracker store, ``bot.rasa.stores.PrePingSQLTrackerStore``)
  and the knowledge base; Redis the conversation locks (``bot.rasa.stores.AtomicRedisLockStore``),
  rate limits, phone-channel state and web chat rooms (bot/channels/shared.py).
* Both are started here in DATA_DIR/cluster (generated passwords in DATA_DIR/secrets, loopback
  only), unless DATABASE_URL / REDIS_URL name existing ones.
* haproxy: its public port (RASA_PORT) passes only what patients' clients need - web chat
  (``/socket.io/``) and the Telegram and Twilio webhooks - and answers 404 to anything else
  (the REST channel, Rasa's version banner at ``/``); the REST channel has a loopback-only port
  of its own (BALANCER_REST_PORT) for the clinic's integrations, tests and evaluation. Web chat
  sticks to one instance with a cookie (long-polling needs it; a client whose instance died is
  sent to another one and resumes its session); the webhooks and REST are spread round robin.
  Each instance is health-checked every second; a refused connection is retried on another
  instance; ``X-Served-By`` names the instance that answered.
* The schema and the knowledge base are created before any instance starts.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import quote

from bot.ops import runtime
from bot.ops.serve import (Plan, Program, ServeOptions, action_program, child_env, http_ready, rasa_command,
                       web_program, write_endpoints)
from bot.ops.settings import PROJECT_ROOT, Settings

PACKAGES = ("postgresql", "redis-server", "haproxy")  # Debian packages (scripts/setup.sh installs them)


class ClusterError(RuntimeError):
    """The cluster cannot be set up; the message says what to do."""


def is_root() -> bool:
    return os.geteuid() == 0


def system_user(name: str) -> Optional[str]:
    """Run a server as its own system user when this runs as root (never PostgreSQL as root:
    initdb refuses it), else as whoever runs this."""
    if not is_root():
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        return None
    return name


def give_to(path: Path, user: Optional[str]) -> None:
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def traversable(path: Path) -> None:
    """Let a system user reach a folder below ``path`` without reading ``path`` itself (0711)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o711)


def postgres_bindir() -> Path:
    configured = os.environ.get("PG_BINDIR")
    candidates = [configured] if configured else sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                                        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    for candidate in reversed(candidates):
        if candidate and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    raise ClusterError("PostgreSQL is not installed (Debian: apt-get install postgresql; ./run.sh cluster does it)")


def executable(name: str, package: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if not found:
        raise ClusterError(f"{name} is not installed (Debian: apt-get install {package}; ./run.sh cluster does it)")
    return found


@dataclass(frozen=True)
class Ports:
    balancer: int
    rest: int
    instances: List[int]
    actions: List[int]
    postgres: int
    redis: int

    @classmethod
    def of(cls, settings: Settings) -> "Ports":
        n = settings.rasa_instances
        return cls(balancer=settings.rasa_port, rest=settings.balancer_rest_port,
                   instances=[settings.rasa_instance_port + i for i in range(n)],
                   actions=[settings.action_server_port + i for i in range(n)],
                   postgres=settings.cluster_postgres_port, redis=settings.cluster_redis_port)


# ---- PostgreSQL ------------------------------------------------------------------------------------

def local_postgres_url(password: str, port: int) -> str:
    """The assistant's database on the PostgreSQL that `./run.sh cluster` starts (loopback)."""
    return f"postgresql://{LocalPostgres.ROLE}:{quote(password)}@127.0.0.1:{port}/{LocalPostgres.DATABASE}"


def local_redis_url(password: str, port: int) -> str:
    """The Redis that `./run.sh cluster` starts (loopback)."""
    return f"redis://:{quote(password)}@127.0.0.1:{port}/0"


class LocalPostgres:
    """A PostgreSQL server of this project's own, in DATA_DIR/cluster/postgres: an administrator
    role for setting up, and a ``clinic`` role that owns the ``clinic`` database the assistant
    uses (passwords in DATA_DIR/secrets). TCP on 127.0.0.1 only, SCRAM passwords."""

    DATABASE = ROLE = "clinic"
    ADMIN = "clinic_admin"

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self.port = port
        self.base = settings.data_dir / "cluster"
        self.data = self.base / "postgres"
        self.user = system_user("postgres")
        self.bindir = postgres_bindir()
        self.admin_password = runtime.secret(settings, "postgres-admin")
        self.password = runtime.secret(settings, "postgres-clinic")

    @property
    def url(self) -> str:
        return local_postgres_url(self.password, self.port)

    @property
    def admin_url(self) -> str:
        return f"postgresql://{self.ADMIN}:{quote(self.admin_password)}@127.0.0.1:{self.port}/postgres"

    def initialise(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        traversable(self.settings.data_dir)
        traversable(self.base)
        self.data.mkdir(mode=0o700, exist_ok=True)
        give_to(self.data, self.user)
        with tempfile.TemporaryDirectory(prefix="clinic-pg-") as scratch:
            pwfile = Path(scratch) / "pw"
            pwfile.write_text(self.admin_password + "\n", encoding="utf-8")
            os.chmod(scratch, 0o711)
            os.chmod(pwfile, 0o600)
            give_to(pwfile, self.user)
            result = subprocess.run(
                [str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.ADMIN, f"--pwfile={pwfile}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
                user=self.user, capture_output=True, text=True, cwd=scratch, timeout=180)
        if result.returncode != 0:
            raise ClusterError(f"initdb failed: {result.stderr.strip()[-500:]}")

    def program(self) -> Program:
        return Program(
            "postgres",
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200",
             "-c", "password_encryption=scram-sha-256", "-c", "logging_collector=off", "-c", "log_min_messages=warning"],
            ready=lambda: _sql_answers(self.admin_url), label="PostgreSQL", priority=1, user=self.user,
            stop_signal="INT")  # SIGINT: PostgreSQL's "fast" shutdown

    def bootstrap(self) -> None:
        """The ``clinic`` role and database, created once."""
        import psycopg2

        connection = psycopg2.connect(_dsn(self.admin_url), connect_timeout=5)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.ROLE,))
                if cursor.fetchone() is None:
                    cursor.execute(f"CREATE ROLE {self.ROLE} LOGIN PASSWORD %s", (self.password,))
                else:
                    cursor.execute(f"ALTER ROLE {self.ROLE} LOGIN PASSWORD %s", (self.password,))
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.DATABASE,))
                if cursor.fetchone() is None:
                    cursor.execute(f"CREATE DATABASE {self.DATABASE} OWNER {self.ROLE}")
        finally:
            connection.close()


def _dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _sql_answers(url: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(_dsn(url), connect_timeout=2).close()
        return True
    except psycopg2.Error:
        return False


# ---- Redis -------------------------------------------------------------------------------------------

class LocalRedis:
    """A Redis server of this project's own: loopback only, a password, nothing saved to disk
    (locks, rate limits and delivery ids are short-lived)."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self.port = port
        self.dir = settings.data_dir / "cluster" / "redis"
        self.user = system_user("redis")
        self.password = runtime.secret(settings, "redis")
        self.binary = executable("redis-server", "redis-server")

    @property
    def url(self) -> str:
        return local_redis_url(self.password, self.port)

    def program(self) -> Program:
        traversable(self.settings.data_dir)
        traversable(self.dir.parent)
        self.dir.mkdir(mode=0o700, exist_ok=True)
        give_to(self.dir, self.user)
        config = self.dir / "redis.conf"
        config.write_text("\n".join([
            "bind 127.0.0.1", f"port {self.port}", "protected-mode yes", f"dir {self.dir}", 'save ""',
            "appendonly no", f"requirepass {self.password}", "loglevel warning", "logfile \"\"",
            "maxmemory 256mb", "maxmemory-policy noeviction", "",
        ]), encoding="utf-8")
        os.chmod(config, 0o600)
        give_to(config, self.user)
        return Program("redis", [self.binary, str(config)], ready=lambda: redis_answers(self.url), label="Redis",
                       priority=1, user=self.user, stop_signal="TERM")


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


# ---- haproxy -------------------------------------------------------------------------------------------

# What the public side passes to Rasa: patients' clients only (the widget's files are served by
# bot/ops/web.py, not through the balancer).
PUBLIC_PATHS = ("/webhooks/telegram/webhook", "/webhooks/twilio/webhook")
WEBCHAT_PATH = "/socket.io/"
REST_PATH = "/webhooks/rest/"


def haproxy_config(*, balancer_port: int, instances: List[str], interface: str = "127.0.0.1",
                   stats_socket: Optional[Path] = None, stats_group: Optional[str] = None,
                   user: Optional[str] = None, rest_port: Optional[int] = None) -> str:
    """The balancer: on ``balancer_port`` only web chat and the phone webhooks (404 for anything
    else), on ``rest_port`` (loopback only; default ``balancer_port`` + 1) only the REST channel;
    cookie stickiness for web chat, round robin for the rest, health checks, retries of refused
    connections on another instance; ``stats_socket`` (owner-only) tells which instances the
    balancer sees up (``stats_group``: a group that may read it too). ``instances``: "host:port"
    of each Rasa instance; ``user``: the user haproxy drops to after reading its configuration
    as root."""
    rest_port = rest_port or balancer_port + 1
    servers_rest = [f"    server rasa-{i + 1} {address} check" for i, address in enumerate(instances)]
    servers_chat = [f"    server rasa-{i + 1} {address} check cookie rasa-{i + 1}" for i, address in enumerate(instances)]
    return "\n".join([
        "global",  # haproxy writes its warnings (an instance down or up again) to its log file
        "    maxconn 4096",
        *([f"    user {user}", f"    group {user}"] if user else []),
        *([f"    stats socket {stats_socket} " + (f"mode 660 group {stats_group}" if stats_group else "mode 600")
           + " level user"] if stats_socket else []),
        "",
        "defaults",
        "    mode http",
        "    option forwardfor",  # the client's address for the rate limits (SANIC_PROXIES_COUNT=1)
        "    timeout connect 2s",
        "    timeout client 75s",
        "    timeout server 75s",
        "    timeout tunnel 1h",  # web sockets
        "    timeout http-request 10s",
        # An instance busy with turns answers its check late, not never: only a refused or dead
        # connection (seen at once) or 10 s of silence takes it out of rotation. A shorter
        # timeout took the only instance out under load and every patient got a 503.
        "    timeout check 10s",
        "    retries 3",
        "    retry-on conn-failure",  # web chat: only when nothing reached the instance
        "    option redispatch 1",
        "    default-server inter 1s fall 2 rise 2",
        "",
        # The public side: what patients' clients need, nothing else (no REST, no banner at /)
        "frontend assistant",
        f"    bind {interface}:{balancer_port}",
        f"    acl webchat path_beg {WEBCHAT_PATH}",
        f"    acl phone path {' '.join(PUBLIC_PATHS)}",
        "    http-request deny deny_status 404 unless webchat or phone",
        "    use_backend webchat if webchat",
        "    default_backend rasa",
        "",
        # The REST channel, for the clinic's own integrations and tests: loopback only, never
        # behind the public proxy (Rasa also refuses REST relayed for another address)
        "frontend rest",
        f"    bind 127.0.0.1:{rest_port}",
        f"    http-request deny deny_status 404 unless {{ path_beg {REST_PATH} }}",
        "    default_backend rasa",
        "",
        # REST and the phone webhooks: a turn in flight on an instance that dies (its connection
        # closed with no response) is sent again, whole, to the other instance (haproxy's L7
        # retries, on a copy of the buffered request). Safe because such a request names its
        # message: a REST message id, a Telegram update_id or a Twilio MessageSid. The instance
        # that gets it answers a message already answered from the conversation in PostgreSQL,
        # never with a second turn (bot/channels/rest.py, bot/channels/messaging.py).
        "backend rasa",
        "    balance roundrobin",
        "    option http-buffer-request",
        "    retry-on conn-failure empty-response junk-response",
        "    option httpchk GET /webhooks/rest/",
        "    http-check expect status 200",
        "    http-response set-header X-Served-By %s",
        *servers_rest,
        "",
        "backend webchat",
        "    balance roundrobin",
        "    cookie CLINIC_INSTANCE insert indirect nocache httponly attr SameSite=Lax",
        "    option httpchk GET /webhooks/rest/",
        "    http-check expect status 200",
        "    http-response set-header X-Served-By %s",
        *servers_chat,
        "",
    ])


def balancer_program(settings: Settings, ports: Ports) -> Program:
    binary = executable("haproxy", "haproxy")
    user = system_user("haproxy")
    config = settings.data_dir / "run" / "haproxy.cfg"
    config.write_text(haproxy_config(balancer_port=ports.balancer, instances=[f"127.0.0.1:{p}" for p in ports.instances],
                                     interface=settings.rasa_interface, stats_socket=balancer_socket(settings),
                                     user=user, rest_port=ports.rest), encoding="utf-8")
    os.chmod(config, 0o600)
    # Started after the instances, and ready once its health checks see every one of them up
    return Program("balancer", [binary, "-db", "-f", str(config)],
                   ready=lambda: _tcp_open(ports.balancer) and balancer_sees_all(balancer_socket(settings)),
                   label="haproxy balancer", priority=30, stop_signal="TERM", autostart=False)


def balancer_socket(settings: Settings) -> Path:
    return Path(settings.balancer_stats_socket) if settings.balancer_stats_socket else settings.data_dir / "run" / "haproxy.sock"


def balancer_servers(socket_path: Path) -> Dict[str, str]:
    """Each backend server's state as haproxy's health checks see it ({"rasa/rasa-1": "UP", ...}),
    read from its stats socket; empty when haproxy does not answer."""
    import csv
    import io
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(2)
            client.connect(str(socket_path))
            client.sendall(b"show stat\n")
            chunks = []
            while chunk := client.recv(65536):
                chunks.append(chunk)
    except OSError:
        return {}
    text = b"".join(chunks).decode("utf-8", "replace").lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {f"{row['pxname']}/{row['svname']}": row["status"] for row in rows
            if row.get("svname") not in (None, "FRONTEND", "BACKEND")}


def balancer_sees_all(socket_path: Path) -> bool:
    servers = balancer_servers(socket_path)
    return bool(servers) and all(status == "UP" for status in servers.values())


def _tcp_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# ---- the plan ---------------------------------------------------------------------------------------------

# The same endpoints as on a clinic's own servers (deploy/README.md)
DEPLOY_ENDPOINTS = PROJECT_ROOT / "deploy" / "endpoints.yml"


def cluster_plan(options: ServeOptions) -> Plan:
    base = options.settings
    ports = Ports.of(base)
    programs: List[Program] = []
    postgres = redis_server = None
    database_url, redis_url = base.cluster_database_url, base.redis_url
    if not database_url:
        postgres = LocalPostgres(base, ports.postgres)
        postgres.initialise()
        programs.append(postgres.program())
        database_url = postgres.url
    if not redis_url:
        redis_server = LocalRedis(base, ports.redis)
        programs.append(redis_server.program())
        redis_url = redis_server.url
    knowledge_url = base.database_url if os.environ.get("KB_DATABASE_URL") else database_url
    settings = base.copy(update={"profile": "cluster", "cluster_database_url": database_url, "redis_url": redis_url,
                                 "database_url": knowledge_url})
    env = child_env(settings)
    env.update({
        "ASSISTANT_PROFILE": "cluster", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "KB_DATABASE_URL": knowledge_url,
        # Each instance's pool: a few connections (Rasa's default of 50 + 100 would exhaust the server)
        "SQL_POOL_SIZE": "5", "SQL_MAX_OVERFLOW": "10",
    })
    if not os.environ.get("WIDGET_SERVER_URL"):
        env["WIDGET_SERVER_URL"] = f"http://127.0.0.1:{ports.balancer}"
    lock_store = None  # deploy/endpoints.yml's: the atomic store
    if settings.cluster_lock_store == "rasa":  # only for the race test: Rasa's non-atomic store
        from urllib.parse import urlparse

        parts = urlparse(redis_url)
        lock_store = {"type": "redis", "url": parts.hostname, "port": parts.port or 6379, "db": 1,
                      "password": "${REDIS_PASSWORD}"}
        env["REDIS_PASSWORD"] = parts.password or ""
    for i, (port, action_port) in enumerate(zip(ports.instances, ports.actions), start=1):
        programs.append(action_program(f"actions-{i}", action_port, f"action server {i}", autostart=False))
        endpoints = write_endpoints(options, name=f"endpoints-{i}.yml", action_port=action_port,
                                    lock_store=lock_store, source=DEPLOY_ENDPOINTS)
        programs.append(Program(
            f"rasa-{i}", rasa_command(options, endpoints=endpoints, port=port, interface="127.0.0.1"),
            http_ready(f"http://127.0.0.1:{port}/webhooks/rest/"), f"Rasa instance {i}", priority=20,
            autostart=False,
            # Behind the balancer: the client's address comes from X-Forwarded-For (only the
            # instances: the web server is reached directly and must not trust that header)
            environment={"ASSISTANT_INSTANCE": f"rasa-{i}", "SANIC_PROXIES_COUNT": "1"}))
    programs.append(web_program(settings, autostart=False))
    programs.append(balancer_program(settings, ports))

    def bootstrap() -> None:
        if postgres is not None:
            try:
                postgres.bootstrap()
            except Exception as error:  # noqa: BLE001 - said plainly, without the URL's password
                raise ClusterError(f"could not set up the database ({type(error).__name__}: "
                                   f"{str(error).splitlines()[0][:200]})") from None
        facts = setup_database(database_url=database_url, knowledge_url=knowledge_url,
                               knowledge_dir=settings.knowledge_dir,
                               records_url=settings.records_database_url or database_url)
        print(f"  database ready: conversations, staff records and knowledge base ({facts} facts)", flush=True)

    web = f"http://{settings.web_interface}:{settings.web_port}"
    addresses = [
        f"Demo clinic page with the chat widget: {web}/",
        f"Health of every service: {web}/health",
        f"Staff dashboard: {web}/staff/ (make an account: ./run.sh create-staff NAME)",
        f"Balancer: http://{settings.rasa_interface}:{ports.balancer}/ (web chat and the phone webhooks only) in front "
        f"of {len(ports.instances)} Rasa instances ({', '.join(str(p) for p in ports.instances)})",
        f"Assistant ready: POST messages to http://127.0.0.1:{ports.rest}/webhooks/rest/webhook (this machine only; "
        "Ctrl-C stops it)",
    ]
    return Plan(settings, programs, env, bootstrap=bootstrap, addresses=addresses)


def setup_database(*, database_url: str, knowledge_url: str, knowledge_dir: Path,
                   records_url: Optional[str] = None) -> int:
    """Before any Rasa instance starts: the conversations' schema, the staff records' schema and
    the knowledge base, built into the database (idempotent; ``python -m bot setup-database`` on a
    real server). Returns the number of facts."""
    from bot.knowledge.build import build_knowledge_base
    from bot.staff.records import get_record_store
    from bot.rasa.stores import create_conversation_schema

    try:
        create_conversation_schema(database_url)
        get_record_store(url=records_url or database_url)
        return build_knowledge_base(knowledge_dir=knowledge_dir, database_url=knowledge_url).facts
    except Exception as error:  # noqa: BLE001 - said plainly, without the URL's password
        raise ClusterError(f"could not set up the database ({type(error).__name__}: "
                           f"{str(error).splitlines()[0][:200]})") from None


def health_targets(settings: Settings) -> Dict[str, str]:
    """What /health asks in the cluster profile: the balancer, every instance and action
    server, PostgreSQL and Redis."""
    ports = Ports.of(settings)
    targets = {"balancer": f"haproxy://{balancer_socket(settings)}"}
    for i, (port, action_port) in enumerate(zip(ports.instances, ports.actions), start=1):
        targets[f"rasa-{i}"] = f"http://127.0.0.1:{port}/webhooks/rest/"
        targets[f"actions-{i}"] = f"http://127.0.0.1:{action_port}/health"
    targets["postgres"] = settings.cluster_database_url
    targets["redis"] = settings.redis_url
    return targets
