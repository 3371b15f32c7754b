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

from bot.evaluation.dataset import load_dataset
from bot.settings import PROJECT_ROOT

REPORTS = PROJECT_ROOT / "reports"


def percentile(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


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


def server_memory(serve_pid: int) -> Dict[str, Optional[float]]:
    memory: Dict[str, Optional[float]] = {"rasa_server_mb": None, "action_server_mb": None}
    for pid in children(serve_pid):
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


async def _load(url: str, *, users: int, seconds: float) -> Dict[str, object]:
    import aiohttp

    texts = questions()
    stats: Dict[str, list] = {"latencies": [], "errors": [], "lost": []}
    stop_at = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=users)) as session:
        tasks = [
            _patient(session, url, f"load-{users}-{u}", [texts[(u * 3) % len(texts)], "and IM?", "what about the other one?", "thanks"], stop_at, stats)
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
                  concurrency=(20, 50), train: bool = True) -> Dict[str, object]:
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
        result["load"] = [asyncio.run(_load(assistant.rest_url, users=u, seconds=seconds)) for u in concurrency]
        result["memory_after_load"] = server_memory(assistant.process.pid)
    if train:
        result.update(training_time())
    (out / "benchmark.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result
