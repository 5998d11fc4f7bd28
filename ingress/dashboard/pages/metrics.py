"""Metrics: checks, allowed vs blocked, risk score and latency over time, from ``/admin/analytics/summary``,
drawn as inline SVG on the server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ingress.dashboard.api import attempt
from ingress.dashboard.charts import Chart, Series, bar_chart, line_chart
from ingress.dashboard.deps import ApiDep
from ingress.dashboard.pages.customers import customer_names
from ingress.dashboard.rendering import parse_time, render

router = APIRouter()


@dataclass(frozen=True)
class Range:
    label: str
    span: timedelta
    interval: str
    bucket_format: str


RANGES: dict[str, Range] = {
    "1h": Range("Last hour", timedelta(hours=1), "minute", "%H:%M"),
    "6h": Range("Last 6 hours", timedelta(hours=6), "minute", "%H:%M"),
    "24h": Range("Last 24 hours", timedelta(hours=24), "hour", "%H:%M"),
    "7d": Range("Last 7 days", timedelta(days=7), "hour", "%m-%d %H:%M"),
    "30d": Range("Last 30 days", timedelta(days=30), "day", "%m-%d"),
}
DEFAULT_RANGE = "24h"


def _column(series: list[dict[str, Any]], name: str) -> list[float | None]:
    return [None if point.get(name) is None else float(point[name]) for point in series]


def summary_charts(summary: dict[str, Any], bucket_format: str) -> list[Chart]:
    """The four charts of a summary's series (buckets labelled in UTC)."""
    series: list[dict[str, Any]] = summary.get("series", [])
    labels = []
    for point in series:
        moment = parse_time(point.get("bucket"))
        labels.append(moment.astimezone(UTC).strftime(bucket_format) if moment else "")
    interval = summary.get("interval", "bucket")
    return [
        bar_chart(
            f"Checks per {interval}",
            labels,
            [Series("Checks", _column(series, "decisions"), "checks")],
            empty_text="No checks in this period",
        ),
        bar_chart(
            "Allowed vs blocked",
            labels,
            [
                Series("Allowed", _column(series, "allowed"), "allowed"),
                Series("Blocked", _column(series, "blocked"), "blocked"),
            ],
            empty_text="No checks in this period",
        ),
        line_chart(
            "Risk score",
            labels,
            [
                Series("Average", _column(series, "avg_risk"), "risk"),
                Series("95th percentile", _column(series, "p95_risk"), "risk-high"),
            ],
            empty_text="No checks in this period",
        ),
        line_chart(
            "Average latency",
            labels,
            [Series("Latency", _column(series, "avg_latency_ms"), "latency")],
            unit=" ms",
            empty_text="No checks in this period",
        ),
    ]


@router.get("/metrics")
async def metrics(request: Request, api: ApiDep) -> Response:
    range_key = request.query_params.get("range", DEFAULT_RANGE)
    chosen = RANGES.get(range_key) or RANGES[DEFAULT_RANGE]
    range_key = range_key if range_key in RANGES else DEFAULT_RANGE
    customer_id = request.query_params.get("customer_id", "")
    start = (datetime.now(UTC) - chosen.span).isoformat(timespec="seconds")
    names = await customer_names(api)
    result = await attempt(
        api.get("/admin/analytics/summary", customer_id=customer_id, interval=chosen.interval, **{"from": start})
    )
    summary: dict[str, Any] = result.value or {}
    return render(
        request,
        "metrics.html",
        {
            "ranges": RANGES,
            "range_key": range_key,
            "customer_id": customer_id,
            "names": names,
            "summary": summary,
            "charts": summary_charts(summary, chosen.bucket_format) if summary else [],
            "loaded": result.failure is None,
        },
        status_code=result.failure.status if result.failure else 200,
        error=result.failure,
    )
