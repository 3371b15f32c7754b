"""The benchmark's own tools, for real: the stock `rasa init` bot built once (cached under build/)
and answering over REST, the memory of a process tree, py-spy's profile of a running process,
and the report's comparison table."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from bot.evaluation.benchmark import processes_memory, ratios
from bot.evaluation.profile import finish_recording, py_spy, start_recording
from bot.evaluation.report import render
from bot.evaluation.stock_bot import COMPLETE, ensure_stock_bot, is_built, start_stock_bot, stock_bot_dir


def test_a_stock_bot_folder_without_its_completion_mark_is_built_again(tmp_path):
    folder = stock_bot_dir(root=tmp_path)
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "interrupted.tar.gz").write_bytes(b"")
    assert not is_built(folder)
    (folder / COMPLETE).write_text("3.6.21")
    assert is_built(folder)
    assert folder.name.startswith("rasa-3.6")  # keyed by the Rasa version


def test_the_stock_bot_is_built_once_and_answers_over_rest(tmp_path):
    folder = ensure_stock_bot()  # builds on the first run (about a minute), then reuses it
    mark = (folder / COMPLETE).stat().st_mtime_ns
    assert ensure_stock_bot() == folder and (folder / COMPLETE).stat().st_mtime_ns == mark
    with start_stock_bot(folder, tmp_path / "stock") as stock:
        replies = stock.say("someone", "hello")
        assert any("How are you" in reply.get("text", "") for reply in replies), replies
        memory = processes_memory(list(stock.pids().values()))
        assert set(memory["processes"]) == {"Rasa server", "action server"}
        assert memory["total_mb"] > 100  # Rasa with TensorFlow
    assert stock.process.poll() is not None and stock.action_process.poll() is not None


def test_memory_counts_every_process_of_the_tree():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        import os

        alone = processes_memory([child.pid])
        both = processes_memory([os.getpid()])
        assert alone["total_mb"] > 0 and both["total_mb"] > alone["total_mb"]
    finally:
        child.communicate(b"")


@pytest.mark.skipif(py_spy() is None, reason="py-spy is not installed (requirements.txt)")
def test_the_profile_names_where_a_process_spends_its_time(tmp_path):
    busy = textwrap.dedent("""
        import sys
        def count_primes_slowly():
            found = 0
            for n in range(2, 10**9):
                if all(n % d for d in range(2, int(n ** 0.5) + 1)):
                    found += 1
                if sys.stdin.closed:
                    break
        print("started", flush=True)
        count_primes_slowly()
    """)
    child = subprocess.Popen([sys.executable, "-c", busy], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "started"
        out = tmp_path / "profile.txt"
        summary = finish_recording(start_recording(child.pid, out, seconds=2), out)
    finally:
        child.kill()
        child.wait()
    assert summary["samples"] > 0, summary
    top_frame, share = summary["inclusive"][0]
    assert "count_primes_slowly" in top_frame and share > 0.5


def test_the_report_shows_both_bots_and_the_ratios(tmp_path):
    def bot(p50, rate, memory, first, last, ready):
        return {"single_user": {"p50_ms": p50, "p95_ms": p50 * 1.5},
                "load": [{"users": u, "seconds": 30, "throughput_per_s": rate, "p50_ms": 500.0, "p95_ms": 900.0,
                          "errors": 0, "lost_replies": 0} for u in (20, 50)],
                "memory_after_load": {"total_mb": memory, "processes": {"Rasa server": memory}},
                "long_conversation": {"turns": 100, "first_10_p50_ms": first, "last_10_p50_ms": last, "growth": round(last / first, 2)},
                "ready_seconds": ready}

    bench = {**bot(15.0, 60.0, 600.0, 20.0, 24.0, 8.0), "cores": 2,
             "stock": {**bot(30.0, 24.0, 1200.0, 28.0, 89.0, 12.0), "rasa_version": "3.6.21",
                       "folder": "build/stock-bot/rasa-3.6.21"},
             "profile": {"users": 20, "seconds": 10,
                         "rasa_server": {"samples": 100, "inclusive": [["retrieve (bot/rasa/stores.py)", 0.25]]},
                         "action_server": {"skipped": "py-spy could not sample the process"}}}
    bench["ratios"] = ratios(bench)
    assert bench["ratios"]["p50"] == 0.5 and bench["ratios"]["throughput_20"] == 2.5 and bench["ratios"]["memory"] == 0.5
    (tmp_path / "benchmark.json").write_text(json.dumps(bench))
    report = render(tmp_path).read_text()
    assert "| REST latency p50, one patient | 15.0 ms | 30.0 ms | 0.50 | ≤ 0.5× | met |" in report
    assert "| throughput, 20 patients, one process (A-B-A-B) | 60.0 msg/s (p95 900.0 ms) |" in report
    assert "| 0.50 | ≤ 0.6× | met |" in report  # memory
    assert "| 100-turn conversation, p50 turns 1–10 → 91–100 | 20 → 24 ms (×1.20) | 28 → 89 ms (×3.18) |" in report
    assert "| retrieve (bot/rasa/stores.py) | 25.0% |" in report
    assert "action server: not profiled (py-spy could not sample the process)" in report
