"""Date-times in requests: ISO 8601 only, and UTC when no offset is given."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator


def as_utc(moment: datetime) -> datetime:
    """ISO 8601 without an offset means UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_ISO_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}")


def iso_only(value: Any) -> Any:
    """Refuse anything but an ISO 8601 date or date-time (a datetime object passes through).

    pydantic would also read a number, or a string of one, as Unix time: ``to=-1e-19`` meant 1970. The API documents
    ISO 8601, so a number is the caller's mistake, said as one.
    """
    if (isinstance(value, str) and not _ISO_DATE.match(value)) or isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(iso_only)]
