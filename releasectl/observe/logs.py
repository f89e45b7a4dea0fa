"""How log records look on stderr, and the one place that sets logging up (the command line
calls `configure`; the core only logs).

- `text`: for people. The progress lines of the command line already say what each step
  does, so event records are left to them; other records show from WARNING (`-v`: INFO,
  `-vv`: DEBUG; `-q`: ERROR).
- `json`: for CI logs and annotations. One JSON object per line: `time`, `level`, `logger`,
  `event` (`step.started`, `step.finished`, `step.failed`, `step.rolled_back`,
  `backup.written`, `backup.failed`, `lock.waited`, `run.finished`, `message` for a plain
  record, `error` for the error that ends a command), `message`, and the event's fields. From
  INFO (`-v`: DEBUG; `-q`: WARNING).

Every string is passed through the secret redactor before it is written.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from releasectl.secrets import redact
from releasectl.util import timeutil

ROOT = "releasectl"
FORMATS = ("text", "json")


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from datetime import UTC, datetime

        data: dict[str, Any] = {
            "time": timeutil.iso(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        event = getattr(record, "event", None)
        data["event"] = getattr(event, "name", None) or getattr(record, "event_name", "message")
        data["message"] = redact(record.getMessage())
        if event is not None:
            data.update({k: _clean(v) for k, v in event.fields().items()})
        for key, value in getattr(record, "fields", {}).items():
            data[key] = _clean(value)
        if record.exc_info:
            data["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {redact(record.getMessage())}"
        if record.exc_info:
            text += "\n" + redact(self.formatException(record.exc_info))
        return text


class _NotEvents(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "event", None) is None


class StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time (tests and click swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            stream = sys.stderr
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # logging must never break a run
            self.handleError(record)


def level_for(fmt: str, verbosity: int) -> int:
    base = logging.INFO if fmt == "json" else logging.WARNING
    return min(logging.CRITICAL, max(logging.DEBUG, base - 10 * verbosity))


def configure(fmt: str = "text", verbosity: int = 0) -> logging.Logger:
    """Route the `releasectl` loggers to stderr in `fmt`; replaces an earlier configuration."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if isinstance(h, StderrHandler)]:
        logger.removeHandler(old)
    handler = StderrHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
        handler.addFilter(_NotEvents())
    logger.addHandler(handler)
    logger.setLevel(level_for(fmt, verbosity))
    logger.propagate = False
    return logger


def log_error(text: str, exit_code: int) -> bool:
    """With JSON logs on, the error that ends a command is one more JSON line (event
    `error`) instead of plain text; returns whether it was written that way."""
    logger = logging.getLogger(ROOT)
    json_on = any(
        isinstance(h, StderrHandler) and isinstance(h.formatter, JsonFormatter)
        for h in logger.handlers
    )
    if not json_on:
        return False
    logger.error(text, extra={"event_name": "error", "fields": {"exit_code": exit_code}})
    return True
