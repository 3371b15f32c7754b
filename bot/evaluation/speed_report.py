"""The report's speed sections: this assistant against the stock `rasa init` bot measured in the
same run (ratios first: the machine is shared and noisy, a ratio measured together holds), and
where a turn's time goes (the profile under load). Written from benchmark.json."""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

# (measure, this assistant's figure, the stock bot's figure, ratio key, target on the ratio or the figure)
Row = Tuple[str, Callable[[dict], Optional[str]], str, str, Callable[[dict, Optional[float]], Optional[bool]]]


def _load(bench: dict, users: int, key: str) -> Optional[float]:
    return next((run.get(key) for run in bench.get("load", []) if run.get("users") == users), None)


def _ms(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def _memory(bench: dict) -> str:
    memory = bench.get("memory_after_load") or {}
    if "total_mb" not in memory:
        return "—"
    parts = " + ".join(f"{name} {mb:.0f}" for name, mb in sorted(memory.get("processes", {}).items(),
                                                                  key=lambda item: -item[1]))
    return f"{memory['total_mb']:.0f} MB ({parts})"


def _long(bench: dict) -> str:
    long = bench.get("long_conversation") or {}
    if not long.get("first_10_p50_ms"):
        return "—"
    return f"{long['first_10_p50_ms']:.0f} → {long['last_10_p50_ms']:.0f} ms (×{long['growth']:.2f})"


def _rate(bench: dict, users: int) -> str:
    value = _load(bench, users, "throughput_per_s")
    return "—" if value is None else f"{value:.1f} msg/s (p95 {_ms(_load(bench, users, 'p95_ms'))})"


def _at_most(limit: float) -> Callable[[dict, Optional[float]], Optional[bool]]:
    return lambda bench, value: None if value is None else value <= limit


def _at_least(limit: float) -> Callable[[dict, Optional[float]], Optional[bool]]:
    return lambda bench, value: None if value is None else value >= limit


ROWS: List[Row] = [
    ("REST latency p50, one patient", lambda b: _ms(b.get("single_user", {}).get("p50_ms")), "p50", "≤ 0.5×",
     _at_most(0.5)),
    ("REST latency p95, one patient", lambda b: _ms(b.get("single_user", {}).get("p95_ms")), "p95", "—",
     lambda b, v: None),
    ("throughput, 20 patients, one process (A-B-A-B)", lambda b: _rate(b, 20), "throughput_20", "≥ 2×",
     _at_least(2.0)),
    ("throughput, 50 patients, one process (A-B-A-B)", lambda b: _rate(b, 50), "throughput_50", "≥ 2×",
     _at_least(2.0)),
    ("memory (RSS of every process, after load)", _memory, "memory", "≤ 0.6×", _at_most(0.6)),
    ("ready after start", lambda b: None if b.get("ready_seconds") is None else f"{b['ready_seconds']:.1f} s",
     "ready", "≤ 10 s", lambda b, v: None if b.get("ready_seconds") is None else b["ready_seconds"] <= 10),
    ("100-turn conversation, p50 turns 1–10 → 91–100", _long, "long_growth", "this bot ≤ 1.5×",
     lambda b, v: None if not b.get("long_conversation", {}).get("growth")
     else b["long_conversation"]["growth"] <= 1.5),
]


def stock_comparison_section(bench: dict) -> List[str]:
    stock = bench.get("stock")
    if not stock:
        return []
    ratios = bench.get("ratios", {})
    lines = [
        "",
        "## Against the stock Rasa bot, measured together",
        "",
        f"The stock bot is what `rasa init --no-prompt` makes with the same Rasa ({stock.get('rasa_version')}),",
        f"built and trained once into `{stock.get('folder')}` and run as Rasa documents it (`rasa run`, in-memory",
        "tracker store, and `rasa run actions`). Both bots ran at the same time and were measured by the same",
        "client, interleaved: one message to each in turn for latency and the long conversation, and A-B-A-B",
        "halves for load. The machine's cores are shared with other work, so absolute figures move from run",
        f"to run ({bench.get('cores', '?')} cores here); the ratios, measured together, are the result.",
        "",
        "| measure | this assistant | stock `rasa init` bot | ratio (this/stock) | target | |",
        "|---|---|---|---|---|---|",
    ]
    for label, figure, key, target, check in ROWS:
        value = ratios.get(key)
        met = check(bench, value)
        status = "—" if met is None else ("met" if met else "**missed**")
        lines.append(f"| {label} | {figure(bench) or '—'} | {figure(stock) or '—'} | "
                     f"{'—' if value is None else f'{value:.2f}'} | {target} | {status} |")
    return lines


def _frame(frame: str) -> str:
    return frame.replace("|", "\\|")


def profile_section(bench: dict) -> List[str]:
    profile = bench.get("profile")
    if not profile:
        return []
    lines = [
        "",
        "## Where a turn's time goes (profile under load)",
        "",
        f"py-spy sampled the assistant's Rasa server and action server for {profile.get('seconds')} s while",
        f"{profile.get('users')} patients talked to it (after the measured runs). Share of samples with the",
        "function on the stack (wrappers such as the event loop and the web framework left out):",
    ]
    for name, title in (("rasa_server", "Rasa server"), ("action_server", "action server")):
        part = profile.get(name) or {}
        if "skipped" in part:
            lines += ["", f"- {title}: not profiled ({part['skipped']})"]
            continue
        lines += ["", f"**{title}** ({part.get('samples', 0)} samples)", "", "| function (file) | on the stack |",
                  "|---|---|"]
        lines += [f"| {_frame(frame)} | {share * 100:.1f}% |" for frame, share in part.get("inclusive", [])]
    return lines
