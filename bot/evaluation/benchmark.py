"""Speed, load and resource benchmark of the real assistant over REST, beside the stock bot.

`python -m bot benchmark` (or `./run.sh benchmark`): the assistant and the stock bot that
`rasa init --no-prompt` makes with the same Rasa (bot/evaluation/stock_bot.py, built once and
cached) run side by side and are measured in the same run by the same client, interleaved so
that the machine's other load falls on both alike: time to ready, single-user latency over
>= 1,000 messages (one message to each in turn), one 100-turn conversation each (early vs late
turns), 20 and 50 concurrent simulated patients holding multi-turn conversations (A-B-A-B: each
bot twice, in halves), and the memory of every process of each. The assistant's Rasa server and
action server are then profiled under load (bot/evaluation/profile.py). Every request goes to
127.0.0.1 and every loop is bounded in count and time.
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
from bot.ops.settings import PROJECT_ROOT

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


def _program(pid: int) -> str:
    """A short name for one of a bot's processes, from its command line."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    for marker, name in (("bot.ops.action_server", "action server"), ("rasa run actions", "action server"),
                         ("rasa_sdk", "action server"), ("bot.rasa.main", "Rasa server"), ("rasa run", "Rasa server"),
                         ("supervisord", "supervisord"), ("bot.ops.web", "web server"), ("bot serve", "launcher")):
        if marker in command:
            return name
    return "other"


def processes_memory(pids: List[int]) -> Dict[str, object]:
    """RSS of the given processes and all their descendants, by program, and the total (MB)."""
    seen, by_program = set(), {}
    for pid in pids:
        for each in [pid, *descendants(pid)]:
            if each in seen:
                continue
            seen.add(each)
            mb = rss_mb(each)
            if mb is not None:
                name = _program(each)
                by_program[name] = round(by_program.get(name, 0.0) + mb, 1)
    return {"total_mb": round(sum(by_program.values()), 1), "processes": by_program}


def questions() -> List[str]:
    return [item.text for item in load_dataset().questions if item.expect in ("answer", "compare")]


def latency_summary(latencies: List[float]) -> Dict[str, object]:
    return {
        "messages": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        "latencies_ms": [round(x, 2) for x in latencies],
    }


def _timed_say(bot, sender: str, text: str) -> float:
    started = time.perf_counter()
    bot.say(sender, text)
    return (time.perf_counter() - started) * 1000


def _in_turn(bots: Dict[str, object], i: int) -> List[str]:
    """Whose turn first: alternating, so neither bot always follows the other."""
    names = list(bots)
    return names if i % 2 == 0 else names[::-1]


def single_user(bots: Dict[str, object], *, messages: int, warmup: int) -> Dict[str, Dict[str, object]]:
    """One client, one message to each bot in turn; four messages per conversation."""
    texts = questions()
    for i in range(warmup):
        for name in _in_turn(bots, i):
            bots[name].say(f"warm-{i}", texts[i % len(texts)])
    latencies: Dict[str, List[float]] = {name: [] for name in bots}
    for i in range(messages):
        for name in _in_turn(bots, i):
            latencies[name].append(_timed_say(bots[name], f"single-{i // 4}", texts[i % len(texts)]))
    return {name: latency_summary(values) for name, values in latencies.items()}


def long_conversation(bots: Dict[str, object], *, turns: int = 100) -> Dict[str, Dict[str, object]]:
    """One patient who keeps talking to each bot, turn by turn in alternation. Rasa reads and
    featurises a conversation's history every turn: early vs late turns show what that costs."""
    texts = questions()
    latencies: Dict[str, List[float]] = {name: [] for name in bots}
    for i in range(turns):
        for name in _in_turn(bots, i):
            latencies[name].append(_timed_say(bots[name], "long-conversation", texts[(i * 7) % len(texts)]))
    result = {}
    for name, values in latencies.items():
        first, last = percentile(values[:10], 50), percentile(values[-10:], 50)
        result[name] = {"turns": turns, "first_10_p50_ms": first, "last_10_p50_ms": last,
                        "growth": round(last / first, 2) if first and last else None,
                        "latencies_ms": [round(x, 2) for x in values]}
    return result


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
    return _load_summary(users, [(elapsed, stats)])


def _load_summary(users: int, runs: List[tuple]) -> Dict[str, object]:
    """One load level's figures over one or more runs of it: (seconds, stats) each."""
    elapsed = sum(seconds for seconds, _ in runs)
    latencies = [x for _, stats in runs for x in stats["latencies"]]
    errors = sum(len(stats["errors"]) for _, stats in runs)
    lost = sum(len(stats["lost"]) for _, stats in runs)
    return {
        "users": users,
        "seconds": round(elapsed, 1),
        "messages": len(latencies) + errors + lost,
        "throughput_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "errors": errors,
        "lost_replies": lost,
        "_runs": runs,
    }


def alternating_load(bots: Dict[str, object], *, users: int, seconds: float) -> Dict[str, Dict[str, object]]:
    """``users`` patients on each bot in turn, A-B-A-B, ``seconds`` per bot in two halves."""
    runs: Dict[str, List[tuple]] = {name: [] for name in bots}
    for half in range(2):
        for name in _in_turn(bots, half):
            bot = bots[name]
            measured = asyncio.run(_load(bot.rest_url, users=users, seconds=seconds / 2, headers=bot.rest_headers))
            runs[name] += measured.pop("_runs")
    result = {}
    for name, each in runs.items():
        summary = _load_summary(users, each)
        summary.pop("_runs")
        result[name] = summary
    return result


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
    run.pop("_runs")
    wall = time.monotonic() - started
    run["cores_used"] = {name: round((cpu_seconds(pid) - before[name]) / wall, 2) for name, pid in pids.items()}
    run["cores_used_total"] = round(sum(run["cores_used"].values()), 2)
    return run


def cluster_scaling(*, seconds: float = 30, concurrency=(20, 50)) -> Dict[str, object]:
    """The cluster profile (PostgreSQL, Redis, haproxy) with two Rasa instances, then with one
    (rasa-2 and actions-2 stopped, the balancer seeing it down), in the same run and on the same
    ports: throughput, latency, lost replies and CPU per process."""
    from bot.ops.cluster import ClusterError, balancer_sees_all, balancer_servers, executable, postgres_bindir
    from bot.evaluation.cluster_load import under_faults
    from bot.ops.harness import NO_RATE_LIMITS, temporary_cluster

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


def ratio(this: Optional[float], stock: Optional[float]) -> Optional[float]:
    return round(this / stock, 2) if this is not None and stock else None


def ratios(result: Dict[str, object]) -> Dict[str, Optional[float]]:
    """This assistant / the stock bot, for each measure taken of both in the run."""
    this, stock = result, result.get("stock") or {}

    def load(bench: dict, users: int) -> Optional[float]:
        return next((r["throughput_per_s"] for r in bench.get("load", []) if r["users"] == users), None)

    return {
        "p50": ratio(this["single_user"]["p50_ms"], stock.get("single_user", {}).get("p50_ms")),
        "p95": ratio(this["single_user"]["p95_ms"], stock.get("single_user", {}).get("p95_ms")),
        **{f"throughput_{u}": ratio(load(this, u), load(stock, u)) for u in (20, 50)},
        "memory": ratio(this["memory_after_load"]["total_mb"], stock.get("memory_after_load", {}).get("total_mb")),
        "ready": ratio(this["ready_seconds"], stock.get("ready_seconds")),
        "long_growth": ratio(this["long_conversation"]["growth"], stock.get("long_conversation", {}).get("growth")),
    }


def profile_under_load(assistant, *, users: int, seconds: float, out: Path) -> Dict[str, object]:
    """py-spy on the assistant's Rasa server and action server while ``users`` patients talk."""
    from bot.evaluation.profile import finish_recording, start_recording

    pids = {"rasa_server": assistant.pid("rasa"), "action_server": assistant.pid("actions")}
    recordings = {name: start_recording(pid, out / f"profile-{name}.txt", seconds=seconds) for name, pid in pids.items()}
    asyncio.run(_load(assistant.rest_url, users=users, seconds=seconds, headers=assistant.rest_headers))
    profile = {name: finish_recording(process, out / f"profile-{name}.txt") for name, process in recordings.items()}
    profile["users"], profile["seconds"] = users, seconds
    return profile


def run_benchmark(*, out: Path = REPORTS, messages: int = 1000, warmup: int = 50, seconds: float = 30,
                  concurrency=(20, 50), train: bool = True, cluster: bool = True) -> Dict[str, object]:
    from bot.evaluation.stock_bot import ensure_stock_bot, rasa_version, start_stock_bot
    from bot.ops.harness import NO_RATE_LIMITS, start_assistant
    from bot.ops.training import ensure_model

    out.mkdir(parents=True, exist_ok=True)
    model = ensure_model()
    stock_dir = ensure_stock_bot()
    result: Dict[str, object] = {"model_mb": round(model.stat().st_size / 1024 / 1024, 2), "cores": os.cpu_count()}
    stock: Dict[str, object] = {"rasa_version": rasa_version(), "folder": str(stock_dir.relative_to(PROJECT_ROOT))}
    with tempfile.TemporaryDirectory() as tmp, \
            start_assistant(Path(tmp) / "serve.log", extra_env=NO_RATE_LIMITS) as assistant:
        result["ready_seconds"] = round(assistant.ready_seconds, 1)
        started = time.perf_counter()
        assistant.say("first", "which is faster?")
        result["first_answer_seconds"] = round(assistant.ready_seconds + time.perf_counter() - started, 1)
        with start_stock_bot(stock_dir, Path(tmp) / "stock") as stock_bot:
            stock["ready_seconds"] = round(stock_bot.ready_seconds, 1)
            bots = {"assistant": assistant, "stock": stock_bot}
            memories = {"assistant": lambda: processes_memory([assistant.process.pid]),
                        "stock": lambda: processes_memory(list(stock_bot.pids().values()))}
            for name, figures in single_user(bots, messages=messages, warmup=warmup).items():
                (result if name == "assistant" else stock)["single_user"] = figures
            for name, figures in long_conversation(bots).items():
                (result if name == "assistant" else stock)["long_conversation"] = figures
            result["memory_after_warmup"], stock["memory_after_warmup"] = memories["assistant"](), memories["stock"]()
            result["load"], stock["load"] = [], []
            for users in concurrency:
                for name, figures in alternating_load(bots, users=users, seconds=seconds).items():
                    (result if name == "assistant" else stock)["load"].append(figures)
            result["memory_after_load"], stock["memory_after_load"] = memories["assistant"](), memories["stock"]()
        result["profile"] = profile_under_load(assistant, users=concurrency[0], seconds=min(seconds, 20), out=Path(tmp))
    result["stock"] = stock
    result["ratios"] = ratios(result)
    if cluster:
        result["cluster"] = cluster_scaling(seconds=seconds, concurrency=concurrency)
    if train:
        result.update(training_time())
    (out / "benchmark.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result
