"""Start the real assistant (`python -m bot serve`) on free ports and talk to it over REST.

Used by the end-to-end tests, the evaluation and the benchmark. REST is the clinic's own door
(bot/channels/rest.py): this machine's clients only, or anyone with REST_TOKEN - when the
assistant was started with one (``extra_env``), every REST call here sends it. In the cluster
profile REST goes through the balancer's loopback-only REST port, never its public one.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from bot.ops.settings import PROJECT_ROOT


# For the evaluation and the benchmark: they measure the assistant itself, not its rate limits
# (a benchmark's one patient talking 100 turns as fast as it can would be throttled).
NO_RATE_LIMITS = dict.fromkeys(
    ("RATE_PER_SENDER_PER_MINUTE", "RATE_PER_SENDER_BURST", "RATE_PER_ADDRESS_PER_MINUTE", "RATE_PER_ADDRESS_BURST"),
    "1000000")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningAssistant:
    def __init__(self, process: subprocess.Popen, rasa_port: int, action_port: int, log: Path, ready_seconds: float,
                 web_port: int = 0, data_dir: Optional[Path] = None, *, rest_port: Optional[int] = None,
                 rest_token: str = ""):
        self.process = process
        self.rasa_port = rasa_port
        self.rest_port = rest_port or rasa_port  # the balancer's REST port in the cluster profile
        self.rest_token = rest_token
        self.action_port = action_port
        self.web_port = web_port
        self.log = log
        self.ready_seconds = ready_seconds
        self.data_dir: Path = data_dir or log.parent / "var"

    # -- the supervised processes ------------------------------------------------------------
    def supervisorctl(self, *args: str) -> str:
        config = self.data_dir / "run" / "supervisord.conf"
        result = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(config), *args],
                                capture_output=True, text=True, timeout=30)
        return result.stdout.strip()

    def pid(self, program: str) -> int:
        return int(self.supervisorctl("pid", program))

    def service_log(self, program: str) -> Path:
        return self.data_dir / "log" / f"{program}.log"

    def logs(self) -> str:
        """Everything every process of this assistant logged, and the console."""
        parts = [self.log.read_text(errors="replace")]
        parts += [p.read_text(errors="replace") for p in sorted((self.data_dir / "log").glob("*")) if p.is_file()]
        return "\n".join(parts)

    def health(self) -> Dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())

    @property
    def web_url(self) -> str:
        """The demo clinic page with the chat widget."""
        return f"http://127.0.0.1:{self.web_port}/"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}/webhooks/rest/webhook"

    @property
    def rest_headers(self) -> Dict[str, str]:
        """What every REST request to this assistant sends (its token, when it has one)."""
        return {"Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.rest_token}"} if self.rest_token else {})}

    @staticmethod
    def conversation_id(sender: str) -> str:
        """The id the tracker store and the records know a REST sender's conversation by."""
        from bot.channels.rest import conversation_id

        return conversation_id(sender)

    def say(self, sender: str, text: str, timeout: float = 60, *,
            metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        """One REST message (``metadata={"button": True}`` for a button press); the replies."""
        body = {"sender": sender, "message": text, **({"metadata": metadata} if metadata else {})}
        request = urllib.request.Request(self.rest_url, data=json.dumps(body).encode(), headers=self.rest_headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # as Ctrl-C
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def __enter__(self) -> "RunningAssistant":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def free_port_range(count: int, *, attempts: int = 200) -> int:
    """The first of ``count`` consecutive free ports."""
    import random

    for _ in range(attempts):
        first = random.randint(20_000, 60_000 - count)
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports")


class RunningCluster(RunningAssistant):
    """The cluster profile: ``rasa_port`` is the balancer; ``instance(i)`` talks to one instance."""

    def __init__(self, *args: Any, instance_ports: List[int], postgres_port: int, redis_port: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.instance_ports = instance_ports
        self.postgres_port = postgres_port
        self.redis_port = redis_port

    def instance(self, number: int) -> RunningAssistant:
        """A view of Rasa instance ``number`` (1-based) without the balancer."""
        return RunningAssistant(self.process, self.instance_ports[number - 1], self.action_port + number - 1, self.log,
                                self.ready_seconds, self.web_port, self.data_dir, rest_token=self.rest_token)

    def secret(self, name: str) -> str:
        return (self.data_dir / "secrets" / f"{name}.key").read_text(encoding="utf-8").strip()

    @property
    def database_url(self) -> str:
        from bot.ops.cluster import local_postgres_url

        return local_postgres_url(self.secret("postgres-clinic"), self.postgres_port)

    @property
    def redis_url(self) -> str:
        from bot.ops.cluster import local_redis_url

        return local_redis_url(self.secret("redis"), self.redis_port)


def start_assistant(log: Path, extra_env: Optional[Dict[str, str]] = None, timeout: float = 240,
                    data_dir: Optional[Path] = None, *, cluster: bool = False, instances: int = 2) -> RunningAssistant:
    """Start `python -m bot serve` (``cluster``: ``serve --cluster`` with its own PostgreSQL,
    Redis, haproxy and ``instances`` Rasa instances) on free ports, with its own data folder
    next to ``log``, and wait until it says it is ready."""
    rasa_port, web_port = free_port(), free_port()
    action_port = free_port_range(instances) if cluster else free_port()
    data_dir = data_dir or log.parent / "var"
    env = {
        **os.environ,
        "RASA_PORT": str(rasa_port),
        "ACTION_SERVER_PORT": str(action_port),
        "WEB_PORT": str(web_port),
        "DATA_DIR": str(data_dir),
        "RASA_TELEMETRY_ENABLED": "false",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    command = [sys.executable, "-m", "bot", "serve"]
    if cluster:
        instance_port = free_port_range(instances)
        env.update({"RASA_INSTANCES": str(instances), "RASA_INSTANCE_PORT": str(instance_port),
                    "BALANCER_REST_PORT": str(free_port()),
                    "CLUSTER_POSTGRES_PORT": str(free_port()), "CLUSTER_REDIS_PORT": str(free_port())})
        for name in ("ASSISTANT_PROFILE", "DATABASE_URL", "REDIS_URL", "KB_DATABASE_URL"):
            env.pop(name, None)
        command.append("--cluster")
    env.update(extra_env or {})
    handle = log.open("w")
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    while time.monotonic() - started < timeout:
        if "Assistant ready" in log.read_text(errors="replace"):
            ready = time.monotonic() - started
            token = env.get("REST_TOKEN", "")
            if cluster:
                return RunningCluster(process, rasa_port, action_port, log, ready, web_port, Path(env["DATA_DIR"]),
                                      instance_ports=[instance_port + i for i in range(instances)],
                                      postgres_port=int(env["CLUSTER_POSTGRES_PORT"]),
                                      redis_port=int(env["CLUSTER_REDIS_PORT"]),
                                      rest_port=int(env["BALANCER_REST_PORT"]), rest_token=token)
            return RunningAssistant(process, rasa_port, action_port, log, ready, web_port, Path(env["DATA_DIR"]),
                                    rest_token=token)
        if process.poll() is not None:
            break
        time.sleep(0.25)
    process.kill()
    process.wait()
    raise RuntimeError("assistant did not start:\n" + log.read_text(errors="replace")[-4000:])


@contextmanager
def temporary_cluster(extra_env: Optional[Dict[str, str]] = None, *, instances: int = 2,
                      timeout: float = 300) -> Iterator[RunningCluster]:
    """The cluster profile (its own PostgreSQL and Redis) in a temporary data folder under /tmp,
    which the postgres and redis system users can reach (0711), removed afterwards."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="clinic-cluster-"))
    os.chmod(base, 0o711)
    try:
        with start_assistant(base / "serve.log", extra_env=extra_env, data_dir=base / "var", cluster=True,
                             instances=instances, timeout=timeout) as cluster:
            assert isinstance(cluster, RunningCluster)
            yield cluster
    finally:
        shutil.rmtree(base, ignore_errors=True)
