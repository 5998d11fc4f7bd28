"""Analytics routes: the decision history (``/logs`` for operators, ``/v1/decisions`` for a customer's own),
summaries from the rollup views, and the AsyncAPI document of the decision stream. Every one takes a token from
the calling key's read bucket (``ingress.http.read_limits``).

ClickHouse is called off the event loop, under the client's lock (the embedded engine is one per process and
not thread-safe), with bound parameters only.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator

from consumers.audit.spec import asyncapi_for
from infra.decisions_table import RETRYABLE_ERRORS, run_locked, run_query
from ingress.audit.export import cursor_key, history_item, iso_utc, to_csv, to_ndjson
from ingress.audit.filters import (
    Cursor,
    DecisionFilters,
    decode_cursor,
    encode_cursor,
    field_error,
    parse_filters,
    storable,
)
from ingress.audit.queries import (
    MAX_BUCKETS,
    ROLLUPS,
    Interval,
    align,
    logs_query,
    shadow_disagreement_query,
    summary_queries,
)
from ingress.http.datetimes import IsoDatetime
from ingress.http.errors import ApiError
from ingress.http.read_limits import AdminReadDep, CustomerReadDep
from ingress.http.responses import JsonResponse

log = logging.getLogger("ingress.audit")

router = APIRouter(tags=["analytics"])

NEXT_CURSOR_HEADER = "X-Next-Cursor"


_FILTERS_SCHEMA = DecisionFilters.model_json_schema(by_alias=True)
_FILTERS_BODY = {
    "required": False,
    "content": {
        "application/x-www-form-urlencoded": {"schema": _FILTERS_SCHEMA},
        "application/json": {"schema": _FILTERS_SCHEMA},
    },
}


def _filter_parameters(*, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """OpenAPI query parameters from the filters model, so the docs list what the route reads by hand."""
    schema = _FILTERS_SCHEMA
    return [
        {"name": name, "in": "query", "required": False, "schema": prop, "description": prop.get("description", "")}
        for name, prop in schema["properties"].items()
        if name not in exclude
    ]


async def clickhouse_rows(request: Request, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    try:
        client = await request.app.state.resources.clickhouse_client()
        return await run_locked(client, run_query, client, sql, params)
    except RETRYABLE_ERRORS as exc:
        log.warning("analytics query failed: %s", type(exc).__name__)
        raise ApiError(
            503, "unavailable", "the audit store is unavailable; retry shortly", headers={"Retry-After": "2"}
        ) from None


async def _filters_from_request(request: Request) -> tuple[DecisionFilters, Literal["query", "body"]]:
    """Query string for GET; for POST also a form (``curl -d``) or JSON body, whose fields win."""
    data: dict[str, Any] = dict(request.query_params)
    source: Literal["query", "body"] = "query"
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if content_type == "application/json":
            try:
                parsed = await request.json() if body else {}
            except ValueError:
                raise field_error("body", "body", "not valid JSON", "json_invalid") from None
            if not isinstance(parsed, dict):
                raise field_error("body", "body", "expected a JSON object of filters", "dict_type")
            data.update(parsed)
        elif body:
            form = await request.form()
            data.update({key: value for key, value in form.items() if isinstance(value, str)})
        source = "body"
    return parse_filters(data, source=source), source


async def _history(
    request: Request, filters: DecisionFilters, *, customer_id: UUID | None, source: str = "query"
) -> Response:
    fingerprint = filters.fingerprint(customer_id)
    after = decode_cursor(filters.cursor, fingerprint, source=source) if filters.cursor else None
    database = request.app.state.settings.clickhouse_database
    sql, params = logs_query(database, filters, customer_id=customer_id, after=after)
    rows = await clickhouse_rows(request, sql, params)
    page = rows[: filters.limit]
    next_cursor = None
    if len(rows) > filters.limit:
        decided_at, event_id = cursor_key(page[-1])
        next_cursor = encode_cursor(Cursor(decided_at, event_id), fingerprint)
    items = [history_item(row) for row in page]
    headers = {NEXT_CURSOR_HEADER: next_cursor} if next_cursor else {}
    if filters.format == "ndjson":
        return Response(to_ndjson(items), media_type="application/x-ndjson", headers=headers)
    if filters.format == "csv":
        headers["Content-Disposition"] = 'attachment; filename="decisions.csv"'
        return Response(to_csv(items), media_type="text/csv; charset=utf-8", headers=headers)
    return JsonResponse({"items": items, "next_cursor": next_cursor}, headers=headers)


# What a history page is, per ``format``: a JSON page, or NDJSON / CSV with the next cursor in a header.
_HISTORY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "a page of decisions, newest first",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": {"type": "object"}},
                        "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    },
                    "required": ["items", "next_cursor"],
                }
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
        "headers": {NEXT_CURSOR_HEADER: {"description": "the next page's cursor", "schema": {"type": "string"}}},
    }
}


# GET and POST registered apart: only POST reads a body, so only POST documents one.
@router.get(
    "/logs",
    summary="Decision history of any customer (operators)",
    responses=_HISTORY_RESPONSES,
    openapi_extra={"parameters": _filter_parameters()},
)
@router.post(
    "/logs",
    summary="Decision history of any customer (operators), filters in a form or JSON body",
    responses=_HISTORY_RESPONSES,
    openapi_extra={"parameters": _filter_parameters(), "requestBody": _FILTERS_BODY},
)
async def logs(request: Request, _admin: AdminReadDep) -> Response:
    """Newest first, paged by ``next_cursor``. ``POST`` takes the same filters as a form or JSON body, so
    ``curl http://localhost:8000/logs -H "Authorization: Bearer …" -d "customer_id=…"`` works as written."""
    filters, source = await _filters_from_request(request)
    return await _history(request, filters, customer_id=filters.customer_id, source=source)


@router.get(
    "/v1/decisions",
    summary="Your own decision history",
    responses=_HISTORY_RESPONSES,
    openapi_extra={"parameters": _filter_parameters(exclude=("customer_id",))},
)
async def own_decisions(request: Request, principal: CustomerReadDep) -> Response:
    """The calling customer's decisions only; the customer comes from the API key, never from the request."""
    if "customer_id" in request.query_params:
        raise field_error("query", "customer_id", "not accepted here: the customer is the one the API key belongs to")
    filters = parse_filters(dict(request.query_params), source="query")
    return await _history(request, filters, customer_id=principal.customer_id)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _quantile(values: Any, index: int, count: int) -> float | None:
    if not count or not values:
        return None
    return round(float(values[index]), 2)


def _measures(row: tuple[Any, ...]) -> dict[str, Any]:
    decisions, allowed, blocked, risk_sum, quantiles, latency_sum, with_pii = row[:7]
    decisions = int(decisions or 0)
    return {
        "decisions": decisions,
        "allowed": int(allowed or 0),
        "blocked": int(blocked or 0),
        "block_rate": _rate(int(blocked or 0), decisions),
        "avg_risk": round(int(risk_sum or 0) / decisions, 2) if decisions else None,
        "p50_risk": _quantile(quantiles, 0, decisions),
        "p95_risk": _quantile(quantiles, 1, decisions),
        "p99_risk": _quantile(quantiles, 2, decisions),
        "avg_latency_ms": round(float(latency_sum or 0) / decisions, 3) if decisions else None,
        "with_personal_data": int(with_pii or 0),
    }


def _top(counts: Any, label: str, top: int) -> list[dict[str, Any]]:
    pairs = sorted(((str(k), int(v)) for k, v in dict(counts or {}).items() if int(v) > 0), key=lambda p: (-p[1], p[0]))
    return [{label: key, "count": count} for key, count in pairs[:top]]


def _not_naive(moment: datetime | None) -> datetime | None:
    return storable(moment)


UtcDatetime = Annotated[IsoDatetime | None, AfterValidator(_not_naive)]


@router.get("/admin/analytics/summary", summary="Counts, block rate, risk and top reasons from the rollups")
async def summary(
    request: Request,
    _admin: AdminReadDep,
    *,
    customer_id: UUID | None = None,
    start: Annotated[UtcDatetime, Query(alias="from", description="ISO 8601; default: `to` minus 24 h")] = None,
    end: Annotated[UtcDatetime, Query(alias="to", description="ISO 8601; default: now")] = None,
    interval: Interval = "hour",
    top: Annotated[int, Query(ge=1, le=100)] = 10,
) -> JsonResponse:
    """Served from the per-minute (``interval=minute``) or per-hour rollups: buckets are whole minutes or hours,
    so ``from`` is rounded down and ``to`` up to the interval; the answer says which range it covers."""
    rollup = ROLLUPS[interval]
    end_at = end or datetime.now(UTC)
    start_at = start or end_at - timedelta(hours=24)
    start_at, end_at = align(start_at, rollup.step), align(end_at, rollup.step, up=True)
    if end_at <= start_at:
        raise field_error("query", "to", "'to' must be after 'from'")
    buckets = int((end_at - start_at) / rollup.step)
    if buckets > MAX_BUCKETS:
        raise field_error("query", "interval", f"{buckets} {interval}s requested; at most {MAX_BUCKETS} per series")
    database = request.app.state.settings.clickhouse_database
    queries = summary_queries(database, customer_id=customer_id, start=start_at, end=end_at, interval=interval)
    totals_rows = await clickhouse_rows(request, queries.totals, queries.params)
    series_rows = await clickhouse_rows(request, queries.series, queries.params)
    totals = totals_rows[0] if totals_rows else (0, 0, 0, 0, [], 0.0, 0, {}, {})
    shadow_sql, shadow_params = shadow_disagreement_query(database, customer_id=customer_id, start=start_at, end=end_at)
    shadow = [
        {
            "policy_id": policy_id,
            "evaluated": evaluated,
            "disagreements": would_block + would_allow,
            "would_block_live_allowed": would_block,
            "would_allow_live_blocked": would_allow,
            "disagreement_rate": _rate(would_block + would_allow, evaluated),
        }
        for policy_id, evaluated, would_block, would_allow in await clickhouse_rows(request, shadow_sql, shadow_params)
    ]
    by_point = {iso_utc(row[0]): row[1:] for row in series_rows}
    series = []
    for i in range(buckets):
        point = iso_utc(start_at + i * rollup.step)
        measures = by_point.get(point)
        series.append({"bucket": point, **_measures(measures if measures else (0, 0, 0, 0, [], 0.0, 0))})
    return JsonResponse(
        {
            "customer_id": str(customer_id) if customer_id else None,
            "from": iso_utc(start_at),
            "to": iso_utc(end_at),
            "interval": interval,
            "totals": _measures(totals),
            "top_reasons": _top(totals[7], "reason", top),
            "top_violated_rules": _top(totals[8], "rule", top),
            "series": series,
            "shadow_policies": shadow,
        }
    )


@router.get("/admin/analytics/integrity", summary="Stored rows and distinct event ids of one customer (operators)")
async def integrity(request: Request, _admin: AdminReadDep, customer_id: UUID) -> JsonResponse:
    """Reads the raw table, without ``FINAL``: ``rows - unique_event_ids`` is the number of decisions stored more
    than once (0 when the pipeline deduplicated as promised), which ``/logs`` cannot show since it collapses them."""
    database = request.app.state.settings.clickhouse_database
    found = await clickhouse_rows(
        request,
        f"SELECT count(), uniqExact(event_id) FROM {database}.decisions WHERE customer_id = {{customer_id:UUID}}",
        {"customer_id": customer_id},
    )
    total, unique = found[0] if found else (0, 0)
    return JsonResponse({"customer_id": str(customer_id), "rows": int(total), "unique_event_ids": int(unique)})


@router.get("/asyncapi.json", summary="AsyncAPI document of the decision stream (operators)")
async def asyncapi(request: Request, _admin: AdminReadDep) -> JsonResponse:
    return JsonResponse(asyncapi_for(request.app.state.settings))
