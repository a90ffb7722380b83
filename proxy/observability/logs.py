"""Log output: one JSON object per line (the default, for log shippers) or plain text.

A record may carry `fields` (a dict), as the access log's do: in JSON they become the
object's keys, in text `key=value` pairs after the message.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import orjson

_second: tuple[int, str] = (-1, "")


def _iso(created: float) -> str:
    """UTC with milliseconds; the part to the second is formatted once a second."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


def _timestamp(record: logging.LogRecord) -> str:
    return _iso(record.created)


# Set by configure() for JSON output: access records are written straight to it, since
# the logging machinery (record, caller lookup, handler lock) costs more than the line.
_json_stream: TextIO | None = None


def access(logger: logging.Logger, fields: dict[str, Any]) -> None:
    """One access record: the same line either way, without the detour when JSON."""
    if _json_stream is None:
        logger.info("access", extra={"fields": fields})
        return
    entry = {"ts": _iso(time.time()), "level": "info", "logger": logger.name, **fields}
    _json_stream.write(orjson.dumps(entry).decode() + "\n")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{key}={'-' if value is None else value}" for key, value in fields.items())
        return line


def configure(level: str, log_format: str) -> None:
    global _json_stream
    _json_stream = sys.stderr if log_format == "json" else None  # line-buffered: a line is never split
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
