"""Filters of the decision history (``/logs``, ``/v1/decisions``), read from a query string, a form or JSON, and the
opaque keyset cursor that pages through them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ingress.http.datetimes import IsoDatetime, as_utc

MAX_LIMIT = 1000

ExportFormat = Literal["json", "ndjson", "csv"]


# What ClickHouse's DateTime64 can hold: a moment outside is the caller's mistake (422), not the store failing.
STORABLE_YEARS = (1900, 2299)


def storable(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC (None stays None), or ValueError when the audit log cannot hold it."""
    if moment is None:
        return None
    moment = as_utc(moment)
    if not STORABLE_YEARS[0] <= moment.year <= STORABLE_YEARS[1]:
        raise ValueError(f"must be between the years {STORABLE_YEARS[0]} and {STORABLE_YEARS[1]}")
    return moment


class DecisionFilters(BaseModel):
    """What a caller may filter the history by. Unknown fields are refused, so a typo never widens a query."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    customer_id: UUID | None = Field(None, description="only this customer's decisions (admin endpoints only)")
    from_: IsoDatetime | None = Field(
        None, alias="from", description="decided at or after (ISO 8601; UTC if no offset)"
    )
    to: IsoDatetime | None = Field(None, description="decided before (ISO 8601; UTC if no offset)")
    decision: Literal["allow", "block"] | None = None
    min_risk: int | None = Field(None, ge=0, le=100, description="risk score at least this")
    request_id: str | None = Field(None, min_length=1, max_length=200)
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description=f"rows per page, at most {MAX_LIMIT}")
    cursor: str | None = Field(None, max_length=500, description="next_cursor of the previous page")
    format: ExportFormat = Field("json", description="json (paged object), ndjson or csv (next cursor in a header)")

    @model_validator(mode="before")
    @classmethod
    def _blank_means_absent(cls, data: Any) -> Any:
        # HTML forms and curl -d send empty fields as "": treat them as not given.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and v.strip() == "")}
        return data

    @field_validator("from_", "to")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return storable(value)

    @field_validator("to")
    @classmethod
    def _after_from(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("from_")
        if value is not None and start is not None and start >= value:
            raise ValueError("'to' must be after 'from'")
        return value

    def fingerprint(self, customer_scope: UUID | None) -> str:
        """Identifies the query a cursor belongs to (everything but paging and format)."""
        basis = {
            "customer": str(customer_scope) if customer_scope else None,
            "from": self.from_.isoformat() if self.from_ else None,
            "to": self.to.isoformat() if self.to else None,
            "decision": self.decision,
            "min_risk": self.min_risk,
            "request_id": self.request_id,
        }
        return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def parse_filters(data: dict[str, Any], *, source: Literal["query", "body"]) -> DecisionFilters:
    """Validate ``data``; a failure is the usual 422 naming each bad field (``query.from``, ``body.min_risk``…)."""
    try:
        return DecisionFilters.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False, include_context=False, include_input=False):
            loc = tuple(err.get("loc", ())) or ("filters",)
            errors.append({**err, "loc": (source, *loc)})
        raise RequestValidationError(errors) from None


def field_error(source: str, field: str, message: str, kind: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"loc": (source, field), "msg": message, "type": kind}])


@dataclass(frozen=True)
class Cursor:
    """The last row of a page: the next page starts strictly after it, in (decided_at, event_id) descending order."""

    decided_at: datetime
    event_id: UUID


def encode_cursor(cursor: Cursor, fingerprint: str) -> str:
    payload = {
        "v": 1,
        "t": as_utc(cursor.decided_at).isoformat(timespec="milliseconds"),
        "e": str(cursor.event_id),
        "q": fingerprint,
    }
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str, fingerprint: str, *, source: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        if payload.get("v") != 1:
            raise ValueError("unknown cursor version")
        cursor = Cursor(as_utc(datetime.fromisoformat(payload["t"])), UUID(payload["e"]))
        query = payload["q"]
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        raise field_error(source, "cursor", "not a cursor returned by this API") from None
    if query != fingerprint:
        raise field_error(source, "cursor", "this cursor belongs to a query with other filters")
    return cursor
