"""Run the assistant: action server + Rasa server (or ``rasa shell``) until Ctrl-C.

Both processes are children of this one; Ctrl-C, SIGTERM, or either child
dying stops both cleanly.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import yaml

from bot.settings import PROJECT_ROOT, Settings


@dataclass(frozen=True)
class ServeOptions:
    model: Path
    settings: Settings
    endpoints: Path = PROJECT_ROOT / "endpoints.yml"
    credentials: Path = PROJECT_ROOT / "credentials.yml"
    shell: bool = False
    startup_timeout: float = 180.0


def endpoints_for(options: ServeOptions) -> Path:
    """endpoints.yml, pointed at the configured action server port when it is not the default."""
    data = yaml.safe_load(options.endpoints.read_text(encoding="utf-8")) or {}
    url = f"http://127.0.0.1:{options.settings.action_server_port}/webhook"
    tracker_db = options.settings.tracker_store_db
    if data.get("action_endpoint", {}).get("url") == url and not tracker_db:
        return options.endpoints
    data.setdefault("action_endpoint", {})["url"] = url
    if tracker_db:
        data["tracker_store"] = {"type": "SQL", "dialect": "sqlite", "db": str(Path(tracker_db).resolve())}
    target = PROJECT_ROOT / "build" / f"endpoints-{options.settings.action_server_port}.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(data), encoding="utf-8")
    return target


def child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def wait_for_http(url: str, *, timeout: float, process: Optional[subprocess.Popen] = None) -> None:
    """Poll ``url`` until it answers 200, the process dies, or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def rasa_command(options: ServeOptions) -> List[str]:
    common = [
        "--model", str(options.model),
        "--endpoints", str(endpoints_for(options)),
    ]
    if options.shell:
        return [sys.executable, "-m", "bot.rasa_main", "shell", *common, "--port", str(options.settings.rasa_port)]
    return [
        sys.executable, "-m", "bot.rasa_main", "run", *common,
        "--credentials", str(options.credentials),
        "--port", str(options.settings.rasa_port),
        "--interface", options.settings.rasa_interface,
    ]


def start_web(settings: Settings):
    """The demo clinic page and the widget's assets, in a thread of this process."""
    from bot.web import default_options, make_server, serve_in_thread

    server = make_server(host=settings.web_interface, port=settings.web_port, options=default_options())
    serve_in_thread(server)
    return server


def _stop(processes: List[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(options: ServeOptions) -> int:
    env = child_env()
    actions = subprocess.Popen(
        [sys.executable, "-m", "bot.action_server"], cwd=PROJECT_ROOT, env=env, start_new_session=True
    )
    action_port, rasa_port = options.settings.action_server_port, options.settings.rasa_port
    processes = [actions]
    web = None
    stopping = False

    def on_signal(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        wait_for_http(f"http://127.0.0.1:{action_port}/health", timeout=options.startup_timeout, process=actions)
        print(f"Action server ready on http://127.0.0.1:{action_port}", flush=True)
        if options.shell:
            # The shell needs the terminal: it runs in the foreground and ends the session.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return subprocess.call(rasa_command(options), cwd=PROJECT_ROOT, env=env)
        rasa = subprocess.Popen(rasa_command(options), cwd=PROJECT_ROOT, env=env, start_new_session=True)
        processes.append(rasa)
        wait_for_http(f"http://127.0.0.1:{rasa_port}/webhooks/rest/", timeout=options.startup_timeout, process=rasa)
        web = start_web(options.settings)
        print(f"Demo clinic page with the chat widget: http://{options.settings.web_interface}:{web.server_address[1]}/",
              flush=True)
        print(
            f"Assistant ready: POST messages to http://127.0.0.1:{rasa_port}/webhooks/rest/webhook "
            "(Ctrl-C stops it)",
            flush=True,
        )
        while not stopping and all(p.poll() is None for p in processes):
            time.sleep(0.5)
        return 0 if stopping else 1
    except (RuntimeError, TimeoutError, OSError) as error:
        print(f"Could not start the assistant: {error}", file=sys.stderr)
        return 1
    finally:
        if web is not None:
            web.shutdown()
            web.server_close()
        _stop(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Assistant stopped.", flush=True)
