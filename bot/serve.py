"""Run the assistant under supervision until Ctrl-C: ``python -m bot serve`` (``./run.sh``).

The processes - the action server, the Rasa server and the web server (widget, demo page,
health) - are run by supervisord (the ``supervisor`` package from PyPI), which restarts a
crashed one at once and backs off (1 s, 2 s, ... up to 10 tries) when it keeps failing to
start. This process writes supervisord's configuration into DATA_DIR/run, starts it, waits
until every service answers, prints the addresses, and on Ctrl-C (or SIGTERM) stops
everything cleanly. Each process logs JSON lines to DATA_DIR/log/<name>.log; the console
only shows progress and addresses.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from bot import runtime
from bot.settings import PROJECT_ROOT, Settings


@dataclass(frozen=True)
class Program:
    name: str
    command: List[str]
    ready_url: str
    label: str
    priority: int = 50


@dataclass(frozen=True)
class ServeOptions:
    model: Path
    settings: Settings
    endpoints: Path = PROJECT_ROOT / "endpoints.yml"
    credentials: Path = PROJECT_ROOT / "credentials.yml"
    shell: bool = False
    startup_timeout: float = 240.0


def run_dir(settings: Settings) -> Path:
    return settings.data_dir / "run"


def endpoints_for(options: ServeOptions) -> Path:
    """endpoints.yml pointed at this run's action server and tracker store (DATA_DIR/run)."""
    data = yaml.safe_load(options.endpoints.read_text(encoding="utf-8")) or {}
    data.setdefault("action_endpoint", {})["url"] = f"http://127.0.0.1:{options.settings.action_server_port}/webhook"
    data["tracker_store"] = {"type": "SQL", "dialect": "sqlite", "db": str(options.settings.tracker_store_path)}
    target = run_dir(options.settings) / "endpoints.yml"
    target.write_text(yaml.safe_dump(data), encoding="utf-8")
    return target


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


def programs(options: ServeOptions) -> List[Program]:
    s = options.settings
    python = sys.executable
    actions = Program("actions", [python, "-m", "bot.action_server"],
                      f"http://127.0.0.1:{s.action_server_port}/health", "action server", priority=10)
    if options.shell:
        return [actions]
    rasa = Program("rasa", [
        python, "-m", "bot.rasa_main", "run", "--model", str(options.model),
        "--endpoints", str(endpoints_for(options)), "--credentials", str(options.credentials),
        "--port", str(s.rasa_port), "--interface", s.rasa_interface,
    ], f"http://127.0.0.1:{s.rasa_port}/webhooks/rest/", "Rasa server", priority=20)
    web = Program("web", [python, "-m", "bot.web"], f"http://127.0.0.1:{s.web_port}/widget/widget-config.json",
                  "web server", priority=30)
    return [actions, rasa, web]


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
            "autostart=true", "autorestart=true", "startsecs=3", "startretries=10",
            "stopsignal=INT", "stopwaitsecs=20", "stopasgroup=true", "killasgroup=true",
            f"priority={program.priority}",
            f"stdout_logfile={_ini(str(logs / (program.name + '.log')))}",
            "stdout_logfile_maxbytes=20MB", "stdout_logfile_backups=3", "redirect_stderr=true", "",
        ]
    return "\n".join(lines)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def wait_for_http(url: str, *, timeout: float, process: Optional[subprocess.Popen] = None) -> None:
    """Poll ``url`` until it answers 200, the process dies, or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before {url} answered")
        if _answers(url):
            return
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


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
                                capture_output=True, text=True, timeout=30)
        return result.stdout.strip()

    def pid(self, name: str) -> int:
        return int(self.ctl("pid", name))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # supervisord stops every program, then itself
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def serve(options: ServeOptions) -> int:
    settings = options.settings
    runtime.prepare(settings)
    env = child_env(settings)
    progs = programs(options)

    def on_signal(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"Starting the assistant (logs: {settings.log_dir}/)", flush=True)
    supervisor = Supervisor(settings, progs, env)
    try:
        for program in progs:
            started = time.monotonic()
            wait_for_http(program.ready_url, timeout=options.startup_timeout, process=supervisor.process)
            print(f"  {program.label} ready ({time.monotonic() - started:.0f} s)", flush=True)
        if options.shell:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the shell owns Ctrl-C; stop everything after it
            command = [sys.executable, "-m", "bot.rasa_main", "shell", "--model", str(options.model),
                       "--endpoints", str(endpoints_for(options)), "--port", str(settings.rasa_port)]
            return subprocess.call(command, cwd=PROJECT_ROOT, env=env)
        web = f"http://{settings.web_interface}:{settings.web_port}"
        print(f"Demo clinic page with the chat widget: {web}/", flush=True)
        print(f"Health of every service: {web}/health", flush=True)
        print(f"Assistant ready: POST messages to http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook "
              "(Ctrl-C stops it)", flush=True)
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
