"""The pipeline's Prometheus metrics (``infra/pipeline_metrics.py``): the agreed names, bounded labels, and label
sets that hold every word the audit writer and the delivery worker use."""

from __future__ import annotations

from typing import get_args

from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from consumers.audit.transform import InvalidReason
from infra import pipeline_metrics
from ingress.http import metrics as ingress_metrics
from workers.webhooks.outbox import Outcome


def test_pipeline_metrics_have_the_agreed_names_and_bounded_labels() -> None:
    families = {f.name: f for f in REGISTRY.collect()}
    expected = {
        "governance_consumer_lag": ("gauge", ("group", "topic", "partition")),
        "governance_audit_batch_size": ("histogram", ()),
        "governance_clickhouse_insert_latency_ms": ("histogram", ()),
        "governance_audit_rows_written": ("counter", ()),
        "governance_dlq_messages": ("counter", ("reason",)),
        "governance_spool_relayed": ("counter", ()),
        "governance_webhook_deliveries": ("counter", ("outcome",)),
    }
    objects = {
        "governance_consumer_lag": pipeline_metrics.CONSUMER_LAG,
        "governance_audit_batch_size": pipeline_metrics.AUDIT_BATCH_SIZE,
        "governance_clickhouse_insert_latency_ms": pipeline_metrics.CLICKHOUSE_INSERT_LATENCY,
        "governance_audit_rows_written": pipeline_metrics.AUDIT_ROWS_WRITTEN,
        "governance_dlq_messages": pipeline_metrics.DLQ_MESSAGES,
        "governance_spool_relayed": pipeline_metrics.SPOOL_RELAYED,
        "governance_webhook_deliveries": pipeline_metrics.WEBHOOK_DELIVERIES,
    }
    for name, (kind, labels) in expected.items():
        assert families[name].type == kind, name
        assert tuple(objects[name]._labelnames) == labels, name
    for metric in objects.values():
        assert not {"customer", "key_id", "request_id", "event_id"} & set(metric._labelnames)
    ingress_names = {m._name for m in vars(ingress_metrics).values() if isinstance(m, MetricWrapperBase)}
    assert "governance_checks" in ingress_names
    assert not ingress_names & set(expected), "a pipeline metric reuses an ingress name"


def test_dead_letter_and_webhook_labels_stay_within_their_sets() -> None:
    def value(name: str, **labels: str) -> float:
        found = REGISTRY.get_sample_value(name, labels)
        return found or 0.0

    before_invalid = value("governance_dlq_messages_total", reason="schema_violation")
    before_other = value("governance_dlq_messages_total", reason="other")
    pipeline_metrics.dead_lettered("schema_violation", 2)
    pipeline_metrics.dead_lettered("KeyError: 'customer_id' at offset 99")
    assert value("governance_dlq_messages_total", reason="schema_violation") == before_invalid + 2
    assert value("governance_dlq_messages_total", reason="other") == before_other + 1
    before_failed = value("governance_webhook_deliveries_total", outcome="failed")
    before_retrying = value("governance_webhook_deliveries_total", outcome="retrying")
    pipeline_metrics.webhook_delivered("failed")
    pipeline_metrics.webhook_delivered("retry")  # the delivery worker's word for it
    assert value("governance_webhook_deliveries_total", outcome="retrying") == before_retrying + 1
    pipeline_metrics.webhook_delivered("HTTP 418 from https://example.com/hook")
    assert value("governance_webhook_deliveries_total", outcome="failed") == before_failed + 1
    reasons = {s.labels["reason"] for s in next(iter(pipeline_metrics.DLQ_MESSAGES.collect())).samples}
    assert reasons <= set(pipeline_metrics.DLQ_REASONS)
    outcomes = {s.labels["outcome"] for s in next(iter(pipeline_metrics.WEBHOOK_DELIVERIES.collect())).samples}
    assert outcomes <= set(pipeline_metrics.WEBHOOK_OUTCOMES)


def test_label_lists_are_the_writers_own_words() -> None:
    """The audit writer's dead-letter reasons and the delivery worker's outcomes each have a series of their own:
    nothing they say is counted as ``other``."""
    for reason in get_args(InvalidReason):
        assert reason in pipeline_metrics.DLQ_REASONS, reason
    for outcome in get_args(Outcome):
        before = REGISTRY.get_sample_value("governance_webhook_deliveries_total", {"outcome": "other"})
        pipeline_metrics.webhook_delivered(outcome)
        assert REGISTRY.get_sample_value("governance_webhook_deliveries_total", {"outcome": "other"}) == before, outcome
