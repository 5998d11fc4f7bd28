"""History rows as the API returns them: JSON objects, NDJSON lines or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from ingress.audit.queries import LOG_COLUMNS

# Nested parts of the DecisionEvent returned as stored in the event (details, paths, policy versions).
EVENT_PARTS = ("factors", "violations", "policies", "shadow")

# A CSV row: the history's columns with the nested parts (as JSON) after ``reason``, and no ``event``.
_UP_TO_REASON = LOG_COLUMNS[: LOG_COLUMNS.index("reason") + 1]
CSV_COLUMNS: tuple[str, ...] = (
    *_UP_TO_REASON,
    *EVENT_PARTS,
    *(name for name in LOG_COLUMNS[len(_UP_TO_REASON) :] if name != "event"),
)


_FORMULA_PREFIXES = ("=", "+", "@", "\t", "\r")


def iso_utc(moment: datetime) -> str:
    # The embedded engine returns DateTime64('UTC') values without a zone; they are UTC.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _uuid(value: Any) -> str:
    return str(value if isinstance(value, UUID) else UUID(str(value)))


def history_item(row: Sequence[Any]) -> dict[str, Any]:
    """One stored row (``LOG_COLUMNS`` order) as the API's item."""
    values = dict(zip(LOG_COLUMNS, row, strict=True))
    event = json.loads(values.pop("event") or "{}")
    item: dict[str, Any] = {
        **values,
        "event_id": _uuid(values["event_id"]),
        "customer_id": _uuid(values["customer_id"]),
        "decided_at": iso_utc(values["decided_at"]),
        "allowed": bool(values["allowed"]),
        "latency_ms": round(float(values["latency_ms"]), 3),
    }
    for part in EVENT_PARTS:
        item[part] = event.get(part, [])
    return item


def cursor_key(row: Sequence[Any]) -> tuple[datetime, UUID]:
    values = dict(zip(LOG_COLUMNS, row, strict=True))
    moment = values["decided_at"]
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return moment, UUID(_uuid(values["event_id"]))


def to_ndjson(items: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in _FORMULA_PREFIXES:
        return "'" + value  # a spreadsheet must not evaluate a cell it was handed as text
    return value


def to_csv(items: Sequence[dict[str, Any]]) -> str:
    """A header row, then one row per decision; lists and objects as compact JSON in their cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        writer.writerow([_csv_cell(item.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()
