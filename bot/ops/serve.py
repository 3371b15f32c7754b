"""Run the assistant under supervision until Ctrl-C: ``python -m bot serve`` (``./run.sh``).

The processes - the action server, the Rasa server and the web server (widget, demo page,
health); in the cluster profile also PostgreSQL, Redis, haproxy and several Rasa instances
(bot/ops/cluster.py) - are run by supervisord (the ``supervisor`` package from PyPI), which
restarts a crashed one at once and backs off (1 s, 2 s, ... up to 10 tries) when it keeps
failing to start. This process writes supervisord's configuration into DATA_DIR/run, starts
it, waits until every service answers, prints the addresses, and on Ctrl-C (or SIGTERM) stops
everything cleanly. Each process logs JSON lines to DATA_DIR/log/<name>.log; the console only
shows progress and addresses.

A plan may hold programs back (``autostart=False``) until a bootstrap step has run: the
cluster creates its database, schema and knowledge base before any Rasa instance starts.

``shell`` mode supervises the action server and runs ``rasa shell`` in the foreground.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import yaml

from bot.ops import runtime
from bot.ops.settings import PROJECT_ROOT, Settings, get_settings


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def http_ready(url: str) -> Callable[[], bool]:
    return lambda: _answers(url)


@dataclass(frozen=True)
class Program:
    name: str
    command: List[str]
    ready: Callable[[], bool]  # true once the program serves
    label: str
    priority: int = 50
    autostart: bool = True  # False: started by the plan after its bootstrap step
    user: Optional[str] = None  # run as this system user (supervisord runs as root)
    environment: Dict[str, str] = field(default_factory=dict)  # no secrets: written into the config
    stop_signal: str = "INT"


@dataclass(frozen=True)
class ServeOptions:
    model: Path
    settings: Settings
    endpoints: Path = PROJECT_ROOT / "endpoints.yml"
    credentials: Path = PROJECT_ROOT / "credentials.yml"
    shell: bool = False
    cluster: bool = False
    startup_timeout: float = 240.0


@dataclass
class Plan:
    """What to run: the programs, their environment, what to do before the held-back programs
    start, and what to tell the person who started it."""

    settings: Settings
    programs: List[Program]
    env: Dict[str, str]
    bootstrap: Callable[[], None] = lambda: None
    addresses: List[str] = field(default_factory=list)


def run_dir(settings: Settings) -> Path:
    return settings.data_dir / "run"


def write_endpoints(options: ServeOptions, *, name: str, action_port: int, tracker_store: Optional[Dict] = None,
                    lock_store: Optional[Dict] = None, source: Optional[Path] = None) -> Path:
    """endpoints.yml for one Rasa process (DATA_DIR/run): ``source`` (the project's endpoints.yml
    by default) with this run's action server and, when given, tracker store and lock store. No
    secret is written: the stores read DATABASE_URL and REDIS_URL."""
    data = yaml.safe_load((source or options.endpoints).read_text(encoding="utf-8")) or {}
    data.setdefault("action_endpoint", {})["url"] = f"http://127.0.0.1:{action_port}/webhook"
    if tracker_store:
        data["tracker_store"] = tracker_store
    if lock_store:
        data["lock_store"] = lock_store
    target = run_dir(options.settings) / name
    target.write_text(yaml.safe_dump(data), encoding="utf-8")
    return target


def sqlite_tracker_store(settings: Settings) -> Dict:
    return {"type": "bot.staff.tracker_store.ClinicTrackerStore", "url": f"sqlite:///{settings.tracker_store_path}"}


def child_env(settings: Settings) -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    # Sanic reads SANIC_* settings from the environment: no HTTP body above the limit is read.
    env["SANIC_REQUEST_MAX_SIZE"] = str(settings.request_max_bytes)
    env["SANIC_KEEP_ALIVE_TIMEOUT"] = "15"
    # Library deprecation warnings are for developers, not the clinic's logs (and would break the
    # one-JSON-line-per-event format).
    env["PYTHONWARNINGS"] = "ignore"
    env["SQLALCHEMY_SILENCE_UBER_WARNING"] = "1"
    return env


def rasa_command(options: ServeOptions, *, endpoints: Path, port: int, interface: str) -> List[str]:
    return [sys.executable, "-m", "bot.rasa.main", "run", "--model", str(options.model),
            "--endpoints", str(endpoints), "--credentials", str(options.credentials),
            "--port", str(port), "--interface", interface]


def actions_python() -> str:
    """The action server's interpreter: ACTIONS_PYTHON, else the project's TensorFlow-free
    .venv-actions (set up by ./run.sh and ./test.sh), else this one."""
    configured = get_settings().actions_python
    if configured:
        return configured
    own = PROJECT_ROOT / ".venv-actions" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


def action_program(name: str, port: int, label: str, *, autostart: bool = True) -> Program:
    return Program(name, [actions_python(), "-m", "bot.ops.action_server"], http_ready(f"http://127.0.0.1:{port}/health"),
                   label, priority=10, autostart=autostart, environment={"ACTION_SERVER_PORT": str(port)})


def web_program(settings: Settings, *, autostart: bool = True) -> Program:
    return Program("web", [sys.executable, "-m", "bot.ops.web"],
                   http_ready(f"http://127.0.0.1:{settings.web_port}/widget/widget-config.json"),
                   "web server", priority=30, autostart=autostart)


def create_schema_apart(url: str, env: Dict[str, str]) -> None:
    """Rasa's ``events`` table, created by a short-lived child process: importing Rasa's tracker
    store would cost the launcher about 85 MB, kept for as long as the assistant runs. The URL
    goes through a pipe, never the command line."""
    code = "import sys; from bot.rasa.stores import create_conversation_schema; create_conversation_schema(sys.stdin.read())"
    done = subprocess.run([sys.executable, "-c", code], input=url, text=True, env=env, cwd=PROJECT_ROOT,
                          capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError("could not create the conversations' table: " + (done.stderr.strip().splitlines() or ["?"])[-1])


def embedded_plan(options: ServeOptions) -> Plan:
    """One action server, one Rasa server (SQLite tracker store, in-memory lock), the web server."""
    s = options.settings
    tracker_store = sqlite_tracker_store(s)
    actions = action_program("actions", s.action_server_port, "action server")
    env = child_env(s)
    plan = Plan(s, [actions], env, bootstrap=lambda: create_schema_apart(tracker_store["url"], env))
    if options.shell:
        return plan
    endpoints = write_endpoints(options, name="endpoints.yml", action_port=s.action_server_port,
                                tracker_store=tracker_store)
    rasa = Program("rasa", rasa_command(options, endpoints=endpoints, port=s.rasa_port, interface=s.rasa_interface),
                   http_ready(f"http://127.0.0.1:{s.rasa_port}/webhooks/rest/"), "Rasa server", priority=20,
                   autostart=False)
    plan.programs += [rasa, web_program(s)]
    web = f"http://{s.web_interface}:{s.web_port}"
    plan.addresses = [
        f"Demo clinic page with the chat widget: {web}/",
        f"Health of every service: {web}/health",
        f"Staff dashboard: {web}/staff/ (make an account: ./run.sh create-staff NAME)",
        f"Assistant ready: POST messages to http://127.0.0.1:{s.rasa_port}/webhooks/rest/webhook from this machine "
        "(Ctrl-C stops it)",
    ]
    return plan


def _ini(value: str) -> str:
    return value.replace("%", "%%")


def supervisor_config(settings: Settings, progs: List[Program]) -> str:
    run, logs = run_dir(settings), settings.log_dir
    lines = [
        "[supervisord]", "nodaemon=true", f"logfile={_ini(str(logs / 'supervisord.log'))}",
        "logfile_maxbytes=5MB", "logfile_backups=2", "loglevel=info",
        f"pidfile={_ini(str(run / 'supervisord.pid'))}", "umask=077",
        f"directory={_ini(str(PROJECT_ROOT))}", f"childlogdir={_ini(str(logs))}", "",
        "[unix_http_server]", f"file={_ini(str(run / 'supervisor.sock'))}", "chmod=0700", "",
        "[rpcinterface:supervisor]", "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{_ini(str(run / 'supervisor.sock'))}", "",
    ]
    for program in progs:
        lines += [
            f"[program:{program.name}]",
            f"command={_ini(shlex.join(program.command))}",
            f"autostart={'true' if program.autostart else 'false'}", "autorestart=true", "startsecs=3",
            "startretries=10", f"stopsignal={program.stop_signal}", "stopwaitsecs=20", "stopasgroup=true",
            "killasgroup=true", f"priority={program.priority}",
            f"stdout_logfile={_ini(str(logs / (program.name + '.log')))}",
            "stdout_logfile_maxbytes=20MB", "stdout_logfile_backups=3", "redirect_stderr=true",
        ]
        if program.user:
            lines.append(f"user={program.user}")
        if program.environment:
            pairs = ",".join(f'{key}="{_ini(value)}"' for key, value in sorted(program.environment.items()))
            lines.append(f"environment={pairs}")
        lines.append("")
    return "\n".join(lines)


def wait_for(ready: Callable[[], bool], *, timeout: float, what: str,
             process: Optional[subprocess.Popen] = None) -> None:
    """Poll ``ready`` until it is true, the process dies, or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before {what} was ready")
        if ready():
            return
        time.sleep(0.25)
    raise TimeoutError(f"{what} was not ready within {timeout:.0f}s")


def wait_for_http(url: str, *, timeout: float, process: Optional[subprocess.Popen] = None) -> None:
    wait_for(http_ready(url), timeout=timeout, what=url, process=process)


class Supervisor:
    """supervisord running ``programs`` (a child of this process, in its own session)."""

    def __init__(self, settings: Settings, progs: List[Program], env: Dict[str, str]) -> None:
        self.settings = settings
        self.programs = progs
        self.config = run_dir(settings) / "supervisord.conf"
        self.config.write_text(supervisor_config(settings, progs), encoding="utf-8")
        with (settings.log_dir / "supervisord.out").open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.config)],
                cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                umask=0o077,  # logs, databases and sockets: owner-only
            )

    def ctl(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.config), *args],
                                capture_output=True, text=True, timeout=60)
        return result.stdout.strip()

    def pid(self, name: str) -> int:
        return int(self.ctl("pid", name))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # supervisord stops every program, then itself
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _wait_ready(programs: List[Program], supervisor: Supervisor, timeout: float) -> None:
    started = time.monotonic()
    for program in programs:
        wait_for(program.ready, timeout=timeout, what=program.label, process=supervisor.process)
        print(f"  {program.label} ready ({time.monotonic() - started:.0f} s)", flush=True)


def serve(options: ServeOptions, *, plan_for: Callable[[ServeOptions], Plan]) -> int:
    """Run the programs of ``plan_for(options)`` (``embedded_plan``, or bot/ops/cluster.py's
    ``cluster_plan``: the caller chooses, so this module never imports the cluster's)."""
    settings = options.settings
    runtime.prepare(settings, tracker_store_file=not options.cluster)
    plan = plan_for(options)

    def on_signal(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"Starting the assistant (logs: {settings.log_dir}/)", flush=True)
    supervisor = Supervisor(settings, plan.programs, plan.env)
    try:
        _wait_ready([p for p in plan.programs if p.autostart], supervisor, options.startup_timeout)
        plan.bootstrap()
        held = [p for p in plan.programs if not p.autostart]
        if held:
            supervisor.ctl("start", *(p.name for p in held))
            _wait_ready(held, supervisor, options.startup_timeout)
        if options.shell:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the shell owns Ctrl-C; stop everything after it
            endpoints = write_endpoints(options, name="endpoints.yml", action_port=settings.action_server_port,
                                        tracker_store=sqlite_tracker_store(settings))
            command = [sys.executable, "-m", "bot.rasa.main", "shell", "--model", str(options.model),
                       "--endpoints", str(endpoints), "--port", str(settings.rasa_port)]
            return subprocess.call(command, cwd=PROJECT_ROOT, env=plan.env)
        for line in plan.addresses:
            print(line, flush=True)
        while supervisor.process.poll() is None:
            time.sleep(0.5)
        print("The supervisor stopped unexpectedly; see the logs.", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError, OSError) as error:
        print(f"Could not start the assistant: {error}. See {settings.log_dir}/", file=sys.stderr, flush=True)
        return 1
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        print("Stopping...", flush=True)
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Assistant stopped.", flush=True)
