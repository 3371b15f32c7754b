"""Logs without patient text, for every process of the assistant: one JSON line per event.

Rasa, Sanic and the project log through Python's logging and structlog; both are routed
through structlog's ProcessorFormatter here, and one processor keeps only what is safe:

* the event (a structlog event name, or a log message cut to one line of at most 300
  characters) and a short allow-list of fields (never ``text``, ``message``, ``parse_data``,
  ``tracker``, slot values, sender ids...);
* for an exception, its type and the file and line that raised it - never its message, its
  traceback text or frame variables, which can hold what a patient typed.

The same rules apply at every level, and LOG_LEVEL=DEBUG lowers the level of the project's own
loggers only: libraries (Rasa among them) log message texts and parse results at DEBUG.
"""
from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from typing import Any, Dict, List, MutableMapping, Optional, TextIO

import structlog

SAFE_FIELDS = frozenset({
    "timestamp", "level", "logger", "process", "event", "error", "where",
    "action", "channel", "status", "count", "seconds", "instance", "service", "reason", "pattern",
    # audit lines of deletions (bot/staff/conversations.py): the records' hashed id and counts
    "audit", "conversation", "events", "records", "candidates", "dry_run",
    # staff sign-ins (bot/staff/dashboard.py): the user name's keyed hash, the client's address
    "staff_user", "address", "result",
})
MAX_EVENT_CHARS = 300
# Set by the logging set-up itself (and some also the names of a LogRecord's own attributes)
RECORD_FIELDS = frozenset({"timestamp", "level", "logger", "process", "event", "error", "where"})


def _exception_fields(exc_info: Any) -> Dict[str, str]:
    if exc_info is True:
        exc_info = sys.exc_info()
    if not isinstance(exc_info, tuple) or exc_info[0] is None:
        return {}
    error_type, _, tb = exc_info
    frames = traceback.extract_tb(tb) if tb is not None else []
    where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    return {"error": error_type.__name__, "where": where}


def keep_safe(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Dict[str, Any]:
    """The last processor before rendering: drop everything that is not known to be safe."""
    safe: Dict[str, Any] = _exception_fields(event_dict.pop("exc_info", None))
    event_dict.pop("stack", None)
    event_dict.pop("exception", None)
    event = " ".join(str(event_dict.get("event", "")).split())
    safe["event"] = event[:MAX_EVENT_CHARS] + ("..." if len(event) > MAX_EVENT_CHARS else "")
    for key, value in event_dict.items():
        if key in SAFE_FIELDS and key not in safe and isinstance(value, (str, int, float, bool)):
            safe[key] = value if not isinstance(value, str) else value[:100]
    return safe


def _safe_record(record: logging.LogRecord) -> bool:
    """Drop libraries' DEBUG records (they hold message texts and parse results) and their
    deprecation notices (for their developers, not the clinic; several libraries reset the
    warnings filters, so they are dropped here as well)."""
    if record.levelno < logging.INFO and not record.name.startswith("bot"):
        return False
    return not (record.name == "py.warnings" and "eprecat" in record.getMessage())


def configure_logging(process: str, *, level: Optional[str] = None, stream: Optional[TextIO] = None) -> None:
    """JSON lines on ``stream`` (stdout) for this process; replaces every other handler."""
    level_name = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    numeric = logging.getLevelName(level_name) if isinstance(logging.getLevelName(level_name), int) else logging.INFO

    def add_process(_: Any, __: str, event_dict: Dict[str, Any]) -> Dict[str, Any]:
        event_dict["process"] = process
        return event_dict

    pre_chain: List[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_process,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, keep_safe,
                    structlog.processors.JSONRenderer(ensure_ascii=True)],
        # a standard logging call's ``extra=`` fields, when they are known to be safe
        foreign_pre_chain=[*pre_chain, structlog.stdlib.ExtraAdder(allow=sorted(SAFE_FIELDS - RECORD_FIELDS))],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(_safe_record)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # DEBUG is for the project's own code only: libraries (Rasa among them) log message texts
    # and parse results at DEBUG.
    root.setLevel(max(numeric, logging.INFO))
    logging.getLogger("bot").setLevel(numeric)
    for name in list(logging.root.manager.loggerDict):
        existing = logging.getLogger(name)
        if existing.handlers:  # Sanic, coloredlogs and others bring their own handlers
            existing.handlers[:] = []
            existing.propagate = True
    logging.getLogger("rasa").setLevel(max(numeric, logging.INFO))
    logging.getLogger("twilio").setLevel(max(numeric, logging.WARNING))  # it logs every API request
    # Libraries' deprecation notices are for their developers, not the clinic's logs.
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.simplefilter("ignore", category)
    logging.captureWarnings(True)
    structlog.reset_defaults()
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *pre_chain,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
