"""Where a turn's time goes: py-spy samples a running server (the Rasa server, the action server)
under the benchmark's load, and the samples are summarised for the report.

py-spy (requirements.txt) attaches to a process by its id and reads its Python stacks from
outside, without changing it; where it cannot run (no permission to trace), the profile is
reported as skipped, with the reason.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

# Frames that wrap everything (the interpreter, the web framework, the event loop): they say
# nothing about where a turn's time goes.
_WRAPPERS = ("runpy.py", "asyncio/", "sanic/", "uvloop", "<module>", "threading.py", "concurrent/futures",
             "dask/", "rasa/__main__.py", "rasa/api.py", "rasa/cli/", "rasa/core/run.py", "selectors.py",
             "connection_task", "handle_request", "rasa_sdk/endpoint.py", "bot/ops/action_server.py")


ENTRY_SHARE = 0.8


def py_spy() -> Optional[str]:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


def start_recording(pid: int, out: Path, *, seconds: float, rate: int = 100) -> Optional[subprocess.Popen]:
    """Sample ``pid`` for ``seconds`` into ``out`` (py-spy's raw format: one stack and count a line)."""
    executable = py_spy()
    if executable is None:
        return None
    return subprocess.Popen([executable, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
                             "--rate", str(rate), "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish_recording(process: Optional[subprocess.Popen], out: Path, *, top: int = 12) -> Dict[str, object]:
    if process is None:
        return {"skipped": "py-spy is not installed"}
    _, errors = process.communicate(timeout=120)
    if process.returncode != 0 or not out.exists():
        return {"skipped": f"py-spy could not sample the process: {(errors or '').strip()[-300:]}"}
    return summarise(out.read_text(encoding="utf-8", errors="replace"), top=top)


def _frames(line: str) -> Optional[tuple]:
    stack, _, count = line.rstrip().rpartition(" ")
    if not stack or not count.isdigit():
        return None
    # one entry per function: "name (file:line)" -> "name (file)"
    return [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")], int(count)


def summarise(raw: str, *, top: int = 12) -> Dict[str, object]:
    """The functions a turn spends its time in: ``inclusive`` (the share of samples with the
    function on the stack, wrappers and entry points left out) and ``self`` (the share where it
    was running)."""
    total, inclusive, own = 0, Counter(), Counter()
    for line in raw.splitlines():
        parsed = _frames(line)
        if parsed is None:
            continue
        frames, count = parsed
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if not any(wrapper in frame for wrapper in _WRAPPERS):
                inclusive[frame] += count
    if not total:
        return {"samples": 0, "inclusive": [], "self": []}

    def share(counter: Counter) -> List[List[object]]:
        return [[frame, round(count / total, 3)] for frame, count in counter.most_common(top)]

    # the entry points every turn passes through (on the stack in most samples, running in
    # hardly any) say nothing either
    telling = Counter({frame: count for frame, count in inclusive.items()
                       if count < ENTRY_SHARE * total or own[frame] >= 0.05 * total})
    return {"samples": total, "inclusive": share(telling), "self": share(own)}
