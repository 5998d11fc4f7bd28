"""Structured logs: one JSON object per line with timestamp, level, role, logger, message, request and customer id.

Never a key and never personal data: messages are written by our code, which logs ids and categories only, and
a last-line filter masks anything shaped like one of our API keys or a Bearer token should it slip in.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
customer_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("customer_id", default="")

_SECRET = re.compile(r"(sk_(?:live|admin)_[0-9A-Za-z]{4})[0-9A-Za-z_]+|(Bearer\s+)\S+")


def mask_secrets(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) + "…") if m.group(1) else (m.group(2) + "…"), text)


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "role": self.role,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        customer_id = getattr(record, "customer_id", None) or customer_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        if customer_id:
            entry["customer_id"] = customer_id
        if record.exc_info:
            entry["exception"] = mask_secrets(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


def configure_logging(role: str, level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, aiokafka's) through the JSON formatter on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    import faststream  # noqa: F401 - creates its own stdout/stderr loggers at import; they are rerouted below

    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "faststream.access.kafka"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
