"""Speed, load and resource benchmark of the real assistant over REST.

`python -m bot benchmark` (or `./run.sh benchmark`): time to first answer,
single-user latency over >= 1,000 messages, 20 and 50 concurrent simulated
patients holding multi-turn conversations for a fixed time (throughput,
latency, errors, lost replies), server memory, training time and model size.
Every request goes to 127.0.0.1 and every loop is bounded in count and time.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from bot.evaluation.cluster_load import percentile
from bot.evaluation.dataset import load_dataset
from bot.settings import PROJECT_ROOT

REPORTS = PROJECT_ROOT / "reports"


def children(pid: int) -> List[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> Optional[float]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def descendants(pid: int) -> List[int]:
    found, queue = [], [pid]
    while queue:
        for child in children(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its living descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def server_memory(serve_pid: int) -> Dict[str, Optional[float]]:
    memory: Dict[str, Optional[float]] = {"rasa_server_mb": None, "action_server_mb": None}
    for pid in descendants(serve_pid):  # serve -> supervisord -> the servers
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "bot.action_server" in command:
            memory["action_server_mb"] = rss_mb(pid)
        elif "rasa" in command:
            memory["rasa_server_mb"] = rss_mb(pid)
    return memory


def questions() -> List[str]:
    return [item.text for item in load_dataset().questions if item.expect in ("answer", "compare")]


def single_user(assistant, *, messages: int, warmup: int) -> Dict[str, object]:
    texts = questions()
    for i in range(warmup):
        assistant.say(f"warm-{i}", texts[i % len(texts)])
    latencies = []
    for i in range(messages):
        started = time.perf_counter()
        assistant.say(f"single-{i // 4}", texts[i % len(texts)])
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "messages": messages,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "latencies_ms": [round(x, 2) for x in latencies],
    }


def long_conversation(assistant, *, turns: int = 100) -> Dict[str, object]:
    """One patient who keeps talking: Rasa re-reads and re-sends the whole tracker every turn,
    so a turn costs more the longer the conversation. Early vs late turns show by how much."""
    texts = questions()
    latencies = []
    for i in range(turns):
        started = time.perf_counter()
        assistant.say("long-conversation", texts[(i * 7) % len(texts)])
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "turns": turns,
        "first_10_p50_ms": percentile(latencies[:10], 50),
        "last_10_p50_ms": percentile(latencies[-10:], 50),
    }


async def _patient(session, url: str, sender: str, turns: List[str], stop_at: float, stats: Dict[str, list]) -> None:
    """One chat slot: a patient has a short multi-turn conversation, then the next patient takes the slot.

    Each conversation gets its own sender id, as real patients do; one sender talking for the whole
    run would measure an ever-longer tracker instead of the clinic's traffic.
    """
    import aiohttp

    turn = 0
    while time.monotonic() < stop_at:
        text = turns[turn % len(turns)]
        conversation = turn // len(turns)
        turn += 1
        started = time.perf_counter()
        try:
            async with session.post(url, json={"sender": f"{sender}-{conversation}", "message": text}) as response:
                body = await response.json() if response.status == 200 else None
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                stats["errors"].append(response.status)
            elif not body:
                stats["lost"].append(text)
            else:
                stats["latencies"].append(elapsed)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            stats["errors"].append(type(error).__name__)


async def _load(url: str, *, users: int, seconds: float, headers: Optional[Dict[str, str]] = None) -> Dict[str, object]:
    import aiohttp

    texts = questions()
    stats: Dict[str, list] = {"latencies": [], "errors": [], "lost": []}
    stop_at = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=users),
                                     headers=headers) as session:
        tasks = [
            _patient(session, url, f"load-{users}-{u}",
                     [texts[(u * 3) % len(texts)], "and IM?", "what about the other one?", "thanks"], stop_at, stats)
            for u in range(users)
        ]
        started = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    answered = len(stats["latencies"])
    return {
        "users": users,
        "seconds": round(elapsed, 1),
        "messages": answered + len(stats["errors"]) + len(stats["lost"]),
        "throughput_per_s": round(answered / elapsed, 2),
        "p50_ms": percentile(stats["latencies"], 50),
        "p95_ms": percentile(stats["latencies"], 95),
        "errors": len(stats["errors"]),
        "lost_replies": len(stats["lost"]),
    }


def program_pids(cluster) -> Dict[str, int]:
    """{program: pid} of every running program of the cluster's supervisor."""
    pids = {}
    for line in cluster.supervisorctl("status").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "RUNNING" and parts[2] == "pid":
            pids[parts[0]] = int(parts[3].rstrip(","))
    return pids


def _measured_load(cluster, *, users: int, seconds: float) -> Dict[str, object]:
    """Load through the balancer, with the cores each program used meanwhile (CPU seconds / wall)."""
    pids = program_pids(cluster)
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    run = asyncio.run(_load(cluster.rest_url, users=users, seconds=seconds, headers=cluster.rest_headers))
    wall = time.monotonic() - started
    run["cores_used"] = {name: round((cpu_seconds(pid) - before[name]) / wall, 2) for name, pid in pids.items()}
    run["cores_used_total"] = round(sum(run["cores_used"].values()), 2)
    return run


def cluster_scaling(*, seconds: float = 30, concurrency=(20, 50)) -> Dict[str, object]:
    """The cluster profile (PostgreSQL, Redis, haproxy) with two Rasa instances, then with one
    (rasa-2 and actions-2 stopped, the balancer seeing it down), in the same run and on the same
    ports: throughput, latency, lost replies and CPU per process."""
    from bot.cluster import ClusterError, balancer_sees_all, balancer_servers, executable, postgres_bindir
    from bot.evaluation.cluster_load import under_faults
    from bot.harness import NO_RATE_LIMITS, temporary_cluster

    try:
        postgres_bindir(), executable("redis-server", "redis-server"), executable("haproxy", "haproxy")
    except ClusterError as error:
        return {"skipped": str(error)}
    result: Dict[str, object] = {"cores": os.cpu_count(), "runs": []}
    with temporary_cluster(NO_RATE_LIMITS) as cluster:
        socket_path = cluster.data_dir / "run" / "haproxy.sock"
        for sender in ("warm-a", "warm-b", "warm-c", "warm-d"):  # both instances past their first turn
            cluster.say(sender, "which is faster?")
        for users in concurrency:
            result["runs"].append({"instances": 2, **_measured_load(cluster, users=users, seconds=seconds)})
        cluster.supervisorctl("stop", "rasa-2", "actions-2")
        deadline = time.monotonic() + 30
        while balancer_servers(socket_path).get("rasa/rasa-2") == "UP" and time.monotonic() < deadline:
            time.sleep(0.2)
        for users in concurrency:
            result["runs"].append({"instances": 1, **_measured_load(cluster, users=users, seconds=seconds)})
        # The fault test's scenario, counted for the report: both instances again, then one killed
        # and PostgreSQL restarted under 30 patients
        cluster.supervisorctl("start", "actions-2", "rasa-2")
        deadline = time.monotonic() + 120
        while not balancer_sees_all(socket_path) and time.monotonic() < deadline:
            time.sleep(0.5)
        result["faults"] = under_faults(cluster, patients=30, seconds=30).as_dict()
    return result


def training_time() -> Dict[str, float]:
    """A cold training run (empty Rasa cache) into a temporary directory."""
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        env["RASA_CACHE_DIRECTORY"] = str(Path(tmp) / "cache")
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "rasa", "train", "--out", tmp, "--fixed-model-name", "bench"],
            cwd=PROJECT_ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return {"training_seconds": round(time.monotonic() - started, 1)}


def run_benchmark(*, out: Path = REPORTS, messages: int = 1000, warmup: int = 50, seconds: float = 30,
                  concurrency=(20, 50), train: bool = True, cluster: bool = True) -> Dict[str, object]:
    from bot.harness import NO_RATE_LIMITS, start_assistant
    from bot.training import ensure_model

    out.mkdir(parents=True, exist_ok=True)
    model = ensure_model()
    result: Dict[str, object] = {"model_mb": round(model.stat().st_size / 1024 / 1024, 2)}
    with tempfile.TemporaryDirectory() as tmp, start_assistant(Path(tmp) / "serve.log", extra_env=NO_RATE_LIMITS) as assistant:
        result["ready_seconds"] = round(assistant.ready_seconds, 1)
        started = time.perf_counter()
        assistant.say("first", "which is faster?")
        result["first_answer_seconds"] = round(assistant.ready_seconds + time.perf_counter() - started, 1)
        result["single_user"] = single_user(assistant, messages=messages, warmup=warmup)
        result["long_conversation"] = long_conversation(assistant)
        result["memory_after_warmup"] = server_memory(assistant.process.pid)
        result["load"] = [asyncio.run(_load(assistant.rest_url, users=u, seconds=seconds, headers=assistant.rest_headers))
                          for u in concurrency]
        result["memory_after_load"] = server_memory(assistant.process.pid)
    if cluster:
        result["cluster"] = cluster_scaling(seconds=seconds, concurrency=concurrency)
    if train:
        result.update(training_time())
    (out / "benchmark.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result
