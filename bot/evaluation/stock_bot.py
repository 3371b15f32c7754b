"""The stock bot that `rasa init --no-prompt` makes, built with the project's own Rasa and run
beside the assistant by the benchmark, so both are measured in the same run by the same client.

The bot is built (and trained: `rasa init --no-prompt` trains it) once per Rasa version into
build/stock-bot/rasa-<version>/ and reused while it is complete. It runs as Rasa's documentation
deploys it: `rasa run` (REST channel, in-memory tracker store) and `rasa run actions`, on free
loopback ports, started here directly (no launcher).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Dict, Iterator, List

import yaml

from bot.ops.harness import RunningAssistant, free_port
from bot.ops.serve import http_ready
from bot.ops.settings import PROJECT_ROOT

STOCK_ROOT = PROJECT_ROOT / "build" / "stock-bot"
COMPLETE = ".complete"  # written last: a folder without it is an interrupted build


class StockBotError(RuntimeError):
    """The stock bot could not be built or started."""


def rasa_version() -> str:
    return version("rasa")


def stock_bot_dir(*, root: Path = STOCK_ROOT) -> Path:
    return root / f"rasa-{rasa_version()}"


def stock_model(bot_dir: Path) -> Path:
    models = sorted((bot_dir / "models").glob("*.tar.gz"))
    if not models:
        raise StockBotError(f"no trained model in {bot_dir / 'models'}")
    return models[-1]


def is_built(bot_dir: Path) -> bool:
    return (bot_dir / COMPLETE).is_file() and any((bot_dir / "models").glob("*.tar.gz"))


def _env() -> Dict[str, str]:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PYTHONPATH", None)  # the stock bot sees Rasa only, never the project's code
    return env


def ensure_stock_bot(*, root: Path = STOCK_ROOT) -> Path:
    """The folder of the trained stock bot for this Rasa version, built first when missing or
    incomplete (about a minute). The build happens beside it and is moved in when it succeeded."""
    target = stock_bot_dir(root=root)
    if is_built(target):
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    log = partial.parent / f"{target.name}.init.log"
    with log.open("w") as handle:
        done = subprocess.run([sys.executable, "-m", "rasa", "init", "--no-prompt", "--init-dir", str(partial)],
                              cwd=partial, env=_env(), stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0 or not any((partial / "models").glob("*.tar.gz")):
        raise StockBotError(f"`rasa init --no-prompt` failed (exit {done.returncode}); see {log}")
    (partial / COMPLETE).write_text(rasa_version(), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return target


class RunningStockBot(RunningAssistant):
    """The stock bot's Rasa server (``process``) and action server, spoken to like the assistant."""

    def __init__(self, *args, action_process: subprocess.Popen, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.action_process = action_process

    def pids(self) -> Dict[str, int]:
        return {"rasa": self.process.pid, "actions": self.action_process.pid}

    def stop(self) -> int:
        code = 0
        for process in (self.process, self.action_process):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            code = code or process.wait()
        return code


@contextmanager
def start_stock_bot(bot_dir: Path, run_dir: Path, *, timeout: float = 240) -> Iterator[RunningStockBot]:
    """Run the stock bot on free ports until the block ends; ready once Rasa (which loads the
    model before it listens) and the action server both answer."""
    rasa_port, action_port = free_port(), free_port()
    run_dir.mkdir(parents=True, exist_ok=True)
    endpoints = yaml.safe_load((bot_dir / "endpoints.yml").read_text(encoding="utf-8")) or {}
    endpoints["action_endpoint"] = {"url": f"http://127.0.0.1:{action_port}/webhook"}
    (run_dir / "endpoints.yml").write_text(yaml.safe_dump(endpoints), encoding="utf-8")
    log = run_dir / "rasa.log"
    commands: List[List[str]] = [
        [sys.executable, "-m", "rasa", "run", "actions", "--port", str(action_port)],
        [sys.executable, "-m", "rasa", "run", "--model", str(stock_model(bot_dir)), "--port", str(rasa_port),
         "--interface", "127.0.0.1", "--endpoints", str(run_dir / "endpoints.yml")],
    ]
    started = time.monotonic()
    actions = subprocess.Popen(commands[0], cwd=bot_dir, env=_env(), stdout=(run_dir / "actions.log").open("w"),
                               stderr=subprocess.STDOUT)
    rasa = subprocess.Popen(commands[1], cwd=bot_dir, env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT)
    bot = RunningStockBot(rasa, rasa_port, action_port, log, 0.0, data_dir=run_dir, action_process=actions)
    try:
        waiting = {f"http://127.0.0.1:{rasa_port}/", f"http://127.0.0.1:{action_port}/health"}
        while waiting and time.monotonic() - started < timeout:
            if rasa.poll() is not None or actions.poll() is not None:
                break
            waiting = {url for url in waiting if not http_ready(url)()}
            if waiting:
                time.sleep(0.25)
        if waiting:
            raise StockBotError("the stock bot did not start:\n" + log.read_text(errors="replace")[-3000:])
        bot.ready_seconds = time.monotonic() - started
        yield bot
    finally:
        bot.stop()
