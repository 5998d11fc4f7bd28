"""The Prometheus configuration and alert rules (infra/prometheus/): ``promtool`` checks both and runs the rules'
unit tests (alerts.test.yml), every role is scraped on its port, the ingress scrape sends the metrics token, and
every alert has a runbook in docs/monitoring.md, which names every metric and panel."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

from infra import pipeline_metrics
from tests.support.monitoring_files import (
    MONITORING_DOC,
    PROMETHEUS,
    ROOT,
    dashboard,
    exported_metric_names,
    promql_metric_names,
    run_promtool,
)

METRICS_TOKEN_SECRET = "/run/secrets/metrics_token"


def github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


def test_prometheus_config_and_alert_rules_pass_promtool(tmp_path: Path) -> None:
    assert "SUCCESS" in run_promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))
    # promtool checks that the token file exists: check the same configuration with the secret at a path of ours.
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert config.count(METRICS_TOKEN_SECRET) == 2  # the check path and its read side
    token = tmp_path / "metrics_token"
    token.write_text("t" * 32)
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(config.replace(METRICS_TOKEN_SECRET, str(token)))
    assert "SUCCESS" in run_promtool("check", "config", str(tmp_path / "prometheus.yml"))


def test_the_ingress_scrape_sends_the_metrics_token() -> None:
    """Outside local runs the ingress answers /metrics only with METRICS_TOKEN; compose hands it to Prometheus as
    the secret file the ingress job reads."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job in ("ingress", "ingress-audit"):
        assert jobs[job]["authorization"] == {"type": "Bearer", "credentials_file": METRICS_TOKEN_SECRET}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "metrics_token" in compose["services"]["prometheus"]["secrets"]
    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}


def test_alerts_fire_on_their_failures_and_stay_quiet_otherwise() -> None:
    """promtool's rule unit tests (infra/prometheus/alerts.test.yml) on synthetic series."""
    run_promtool("test", "rules", str(PROMETHEUS / "alerts.test.yml"))


def test_every_role_is_scraped_on_its_port() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "ingress": ["ingress:8000"],
        "ingress-audit": ["ingress-audit:8001"],
        "consumers": [f"consumers:{pipeline_metrics.CONSUMERS_METRICS_PORT}"],
        "workers": [f"workers:{pipeline_metrics.WORKERS_METRICS_PORT}"],
        "redis": ["redis-exporter:9121"],
    }
    assert config["rule_files"] == ["alerts.yml"]


def test_every_alert_has_a_runbook_and_watches_exported_metrics() -> None:
    rules = [
        rule for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for rule in group["rules"]
    ]
    alerts = {rule["alert"]: rule for rule in rules}
    for wanted in (
        "GovernanceErrorRateHigh",
        "GovernanceCheckLatencyHigh",
        "GovernanceConsumerLagHigh",
        "GovernanceSpoolGrowing",
        "GovernanceDeadLettersGrowing",
        "GovernanceRateLimitFallback",
        "GovernanceWebhookFailures",
    ):
        assert wanted in alerts, wanted
    anchors = github_anchors(MONITORING_DOC.read_text())
    exported = exported_metric_names() | {"up"}
    for name, rule in alerts.items():
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/monitoring.md", name
        assert anchor in anchors, f"{name}: no heading for #{anchor} in docs/monitoring.md"
        assert rule["labels"]["severity"] in {"page", "warning"}, name
        assert promql_metric_names(rule["expr"]) <= exported, name
    assert "500" in alerts["GovernanceCheckLatencyHigh"]["expr"]


def test_monitoring_doc_covers_every_metric_and_panel() -> None:
    doc = MONITORING_DOC.read_text()
    for family in REGISTRY.collect():
        if family.name.startswith(("governance_", "request_latency")):
            assert f"`{family.name}" in doc, family.name
    for title in (p["title"] for p in dashboard()["panels"]):
        assert title in doc, title
    for phrase in ("PROMETHEUS_MULTIPROC_DIR", "SENTRY_DSN", "request_id", "9101", "9102", "redis_exporter"):
        assert phrase in doc, phrase
