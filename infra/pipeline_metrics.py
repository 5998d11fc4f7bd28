"""Prometheus metrics of the audit pipeline (consumers) and the workers, and the endpoint that serves them.

The ingress has its own set in ``ingress.http.metrics``; the names here never clash with it. Consumers serve their
metrics on :9101 and workers on :9102 (``start_metrics_server``); ``infra/prometheus/prometheus.yml`` scrapes both.

Label cardinality stays bounded by things we control, never by traffic:

- ``group`` is a Kafka consumer group name from our own settings (a handful per deployment), ``topic`` one of our
  topics;
- ``partition`` is a partition number of our topics (``KAFKA_TOPIC_PARTITIONS``, default 6);
- ``reason`` is one of ``DLQ_REASONS`` and ``outcome`` one of ``WEBHOOK_OUTCOMES``: anything else is counted
  as ``other`` (``dead_lettered`` and ``webhook_delivered`` do the mapping), so a new error text can never
  create a new series.

No metric here is labelled by customer, key, request or event id.

With ``PROMETHEUS_MULTIPROC_DIR`` set (docker-compose.yml sets it for every role) each process writes its samples
to that folder, which must exist and be empty at start, and ``start_metrics_server`` aggregates them.
"""

from __future__ import annotations

import logging
import os
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server

CONSUMERS_METRICS_PORT: Final = 9101
WORKERS_METRICS_PORT: Final = 9102

BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
INSERT_LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)

# Why the audit writer dead-lettered a message, as it names it (consumers.audit.transform.InvalidReason, the
# dlq-reason header; docs/topics.md): no value, not JSON, not a valid DecisionEvent, another event type, a schema
# version this consumer does not know, a receipt that does not verify.
DLQ_REASONS: Final = (
    "empty_value",
    "invalid_json",
    "schema_violation",
    "unexpected_event_type",
    "unsupported_schema_version",
    "unverified_receipt",
    "other",
)
# A webhook attempt: accepted by the receiver, failed and will be retried, failed for good (given up).
WEBHOOK_OUTCOMES: Final = ("delivered", "retrying", "failed", "other")
# The delivery worker's own words for an outcome (workers.webhooks.outbox.Outcome), where they differ.
_WEBHOOK_OUTCOME_NAMES: Final = {"retry": "retrying"}

CONSUMER_LAG = Gauge(
    "governance_consumer_lag",
    "Messages between the partition's end and the group's committed offset",
    ["group", "topic", "partition"],
    # After a rebalance a partition moves to another process: only the newest value of a live process counts.
    multiprocess_mode="livemostrecent",
)
AUDIT_BATCH_SIZE = Histogram(
    "governance_audit_batch_size", "Decision rows per ClickHouse insert of the audit writer", buckets=BATCH_SIZE_BUCKETS
)
CLICKHOUSE_INSERT_LATENCY = Histogram(
    "governance_clickhouse_insert_latency_ms",
    "Time for ClickHouse to accept one audit batch, in milliseconds",
    buckets=INSERT_LATENCY_BUCKETS_MS,
)
AUDIT_ROWS_WRITTEN = Counter("governance_audit_rows_written", "Decision rows written to the ClickHouse audit log")
DLQ_MESSAGES = Counter("governance_dlq_messages", "Messages sent to the dead-letter topic, by reason", ["reason"])
SPOOL_RELAYED = Counter("governance_spool_relayed", "Spooled decision events relayed to Kafka by the workers")
WEBHOOK_DELIVERIES = Counter("governance_webhook_deliveries", "Webhook delivery attempts by outcome", ["outcome"])

# Create every labelled series at zero, so rate() and the alerts see a value before the first increment.
for _reason in DLQ_REASONS:
    DLQ_MESSAGES.labels(_reason)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_DELIVERIES.labels(_outcome)


def dead_lettered(reason: str, count: int = 1) -> None:
    DLQ_MESSAGES.labels(reason if reason in DLQ_REASONS else "other").inc(count)


def webhook_delivered(outcome: str) -> None:
    outcome = _WEBHOOK_OUTCOME_NAMES.get(outcome, outcome)
    WEBHOOK_DELIVERIES.labels(outcome if outcome in WEBHOOK_OUTCOMES else "other").inc()


def spool_relayed(count: int) -> None:
    if count > 0:
        SPOOL_RELAYED.inc(count)


def metrics_registry() -> CollectorRegistry:
    """The registry to serve: every process's samples in multiprocess mode, this process's otherwise."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from other containers
    """Serve ``/metrics`` on a daemon thread: consumers on ``CONSUMERS_METRICS_PORT``, workers on
    ``WORKERS_METRICS_PORT``, or on ``METRICS_PORT`` when set (two of a role on one host). A port already taken is
    logged, not fatal: the process's work matters more than its metrics, and the scrape target shows as down."""
    port = int(os.environ.get("METRICS_PORT") or port)
    try:
        start_http_server(port, addr=addr, registry=metrics_registry())
    except OSError as exc:
        logging.getLogger("infra.metrics").error("metrics not served on %s:%d: %s", addr, port, exc.strerror)
