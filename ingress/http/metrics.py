"""Prometheus metrics of the ingress role, with the onboarding guide's names.

Label cardinality is bounded by things operators create: ``customer`` is the customer's name (one series per
customer), ``key_id`` the public key id (one per key), ``endpoint`` the route template (never the raw path),
``status`` the HTTP status code, ``status_class`` one of 2xx/4xx/5xx, ``which`` oldest or newest, ``reason`` one
of five auth failure reasons.

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
# Counted on disk when /metrics is scraped (the relay and every ingress process change it): the latest count wins.
SPOOL_DEPTH = Gauge(
    "governance_spool_depth", "Decision events waiting in the spool", multiprocess_mode="livemostrecent"
)
# Set at scrape from the verifiers' own count: a flood of forged or unknown keys must leave it flat.
BCRYPT_CALLS = Gauge(
    "governance_auth_bcrypt_calls",
    "bcrypt verifications run since the process started (key cache misses for a stored key)",
    multiprocess_mode="sum",
)
# The guide's per-customer error rate and per-key requests: counted by the HTTP middleware for every answer to an
# authenticated check (429s and 422s included), with the customer and key the check route resolved.
CUSTOMER_RESPONSES = Counter(
    "governance_customer_responses",
    "Answers to a customer's checks by status class (2xx, 4xx, 5xx)",
    ["customer", "status_class"],
)
KEY_REQUESTS = Counter("governance_key_requests", "Checks received per API key", ["customer", "key_id"])
STATUS_CLASSES = ("2xx", "4xx", "5xx")
# Read from PostgreSQL and Redis on a timer (ingress/store_metrics.py); every process reads the same values, so
# multiprocess mode takes the largest, never the sum.
KEY_AGE = Gauge(
    "governance_key_age_seconds",
    "Age of the customer's oldest and newest usable key (which: oldest, newest)",
    ["customer", "which"],
    multiprocess_mode="max",
)
KEY_ROTATIONS = Gauge(
    "governance_key_rotations",
    "Keys rotated so far, per customer (only increases; delta() over a range is the rotation frequency)",
    ["customer"],
    multiprocess_mode="max",
)
REDIS_MEMORY = Gauge(
    "governance_redis_memory_used_bytes", "Memory Redis reports in use (INFO memory)", multiprocess_mode="max"
)
DB_POOL_IN_USE = Gauge("governance_db_pool_in_use", "PostgreSQL connections in use", multiprocess_mode="sum")
DB_POOL_SIZE = Gauge("governance_db_pool_size", "PostgreSQL connections open", multiprocess_mode="sum")

# Series at zero before the first failure: an error rate with no 5xx yet is 0, not "no data".
RESPONSES.labels("/v1/check", "500")
RESPONSES.labels("/v1/check", "503")


_customers_seen: set[str] = set()  # bounded like the label: one entry per customer


def count_customer_response(customer: str, key_id: str, status: int) -> None:
    """One answer to a customer's check; the first one creates the customer's three classes, so its error rate
    exists at 0."""
    status_class = f"{status // 100}xx"
    if customer not in _customers_seen:
        _customers_seen.add(customer)
        for known in STATUS_CLASSES:
            CUSTOMER_RESPONSES.labels(customer, known)
    if status_class in STATUS_CLASSES:
        CUSTOMER_RESPONSES.labels(customer, status_class).inc()
    KEY_REQUESTS.labels(customer, key_id).inc()


def render_metrics() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
