"""Prometheus metrics of the ingress role, with the onboarding guide's names.

Label cardinality is bounded by things operators create: ``customer`` is the customer's name (one series per
customer), ``key_id`` the public key id (one per key), ``endpoint`` the route template (never the raw path),
``status`` the HTTP status code, ``reason`` one of five auth failure reasons.

With several uvicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` (an empty folder) and every worker's samples are
aggregated at scrape time (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
RISK_BUCKETS = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)

CHECKS = Counter("governance_checks", "Checks answered (allowed or blocked), per customer", ["customer"])
# The guide names these without a _total suffix, which prometheus-client reserves for counters: they are gauges
# that only ever increase (summed over processes in multiprocess mode).
ALLOWED = Gauge(
    "governance_decisions_allowed", "Allowed decisions, per customer", ["customer"], multiprocess_mode="sum"
)
BLOCKED = Gauge(
    "governance_decisions_blocked", "Blocked decisions, per customer", ["customer"], multiprocess_mode="sum"
)
RISK = Histogram(
    "governance_risk_score", "Risk score of each decision, per customer", ["customer"], buckets=RISK_BUCKETS
)
LATENCY = Histogram(
    "request_latency_ms", "Request latency in milliseconds, per route", ["endpoint"], buckets=LATENCY_BUCKETS_MS
)
RESPONSES = Counter("governance_http_responses", "HTTP responses by route and status", ["endpoint", "status"])
AUTH_FAILURES = Counter("governance_auth_failures", "Rejected API keys by reason", ["reason"])
RATE_LIMITED = Counter("governance_rate_limited", "Checks refused by the rate limiter", ["customer", "key_id"])
RATE_FALLBACK = Gauge(
    "governance_ratelimit_fallback_active", "1 while rate limiting runs on in-memory buckets", multiprocess_mode="max"
)
PUBLISH_LATENCY = Histogram(
    "governance_kafka_publish_latency_ms", "Time for Kafka to acknowledge a decision", buckets=LATENCY_BUCKETS_MS
)
PUBLISH_OUTCOMES = Counter(
    "governance_decision_publish", "Decision events by outcome (kafka, spool, failed)", ["outcome"]
)
SPOOL_DEPTH = Gauge("governance_spool_depth", "Decision events waiting in the spool", multiprocess_mode="max")
# Set at scrape from the verifiers' own count: a flood of forged or unknown keys must leave it flat.
BCRYPT_CALLS = Gauge(
    "governance_auth_bcrypt_calls",
    "bcrypt verifications run since the process started (key cache misses for a stored key)",
    multiprocess_mode="sum",
)
DB_POOL_IN_USE = Gauge("governance_db_pool_in_use", "PostgreSQL connections in use", multiprocess_mode="sum")
DB_POOL_SIZE = Gauge("governance_db_pool_size", "PostgreSQL connections open", multiprocess_mode="sum")


def render_metrics() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
