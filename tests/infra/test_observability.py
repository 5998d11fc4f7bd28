"""Observability: metrics, the Grafana dashboard, Prometheus scrape config and alerts, Sentry, JSON logs.

The Prometheus files are checked with Debian's ``promtool`` (package ``prometheus``); Sentry events go to a small
HTTP receiver on 127.0.0.1 standing in for sentry.io, which cannot be reached from here.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_args

import asyncpg
import httpx
import pytest
import sentry_sdk
import yaml
from fastapi import Request
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from consumers.audit.transform import InvalidReason
from infra import pipeline_metrics
from infra.logs import customer_id_var, mask_secrets
from infra.sentry import init_sentry, scrub_event
from ingress.app import create_app
from ingress.auth.keys import generate_key
from ingress.http import metrics as ingress_metrics
from ingress.settings import IngressSettings
from tests.conftest import LiveServer, SeededCustomer, insert_admin_key, insert_customer, run_server
from tests.ingress.check.test_check import GUIDE_RULES, GUIDE_STEP4, add_policy, auth
from workers.webhooks.outbox import Outcome

ROOT = Path(__file__).resolve().parents[2]
# The one dashboard file: the guide's path, imported by hand or provisioned by docker-compose.yml.
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
PROMETHEUS = ROOT / "infra" / "prometheus"
MONITORING_DOC = ROOT / "docs" / "monitoring.md"

# The onboarding guide's eleven panels ("Monitoring & Observability"): the overview row, in this order.
GUIDE_PANELS = (
    "Request rate",
    "p95 latency vs 500 ms target",
    "Error rate",
    "Allowed vs blocked",
    "Average risk score",
    "Top customers",
    "Rate-limit violations",
    "Consumer lag",
    "Spool depth",
    "Database pool",
    "Redis memory",
)
# The rows below the overview, each with the guide's list item it answers.
DETAIL_ROWS = ("Per customer", "Per API key", "System", "Audit pipeline and webhooks")
REDIS_EXPORTER_METRICS = frozenset({"redis_memory_used_bytes"})
PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
)
EMAIL = "jane.doe@example.com"


def exported_metric_names() -> set[str]:
    """Every sample name our processes can expose, from the metric objects themselves (ingress.http.metrics and
    infra.pipeline_metrics are imported, so registered)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: set[str] = set()
    for family in REGISTRY.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    stripped = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    stripped = re.sub(r"\$\{?\w+\}?", " ", stripped)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", stripped):
        name, call = match.group(1), match.group(2)
        if call or name in PROMQL_WORDS or name.lower() in {"inf", "nan"}:
            continue
        names.add(name)
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def graph_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel but the rows that group them."""
    return [p for p in board["panels"] if p["type"] != "row"]


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in graph_panels(board) for t in p.get("targets", [])]


def github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus'); the Makefile installs it")
    return binary


def run_promtool(*args: str) -> str:
    result = subprocess.run([promtool(), *args], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# --- pipeline metrics ------------------------------------------------------------------------------------------


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


# --- Grafana ---------------------------------------------------------------------------------------------------


def test_dashboard_has_the_guides_panels() -> None:
    board = dashboard()
    panels = board["panels"]
    # The guide promises an 11-panel dashboard: those eleven are the first row, the details follow in rows.
    assert (panels[0]["type"], panels[0]["title"]) == ("row", "Overview")
    assert tuple(p["title"] for p in panels[1:12]) == GUIDE_PANELS
    assert panels[12]["type"] == "row"
    assert tuple(p["title"] for p in panels if p["type"] == "row") == ("Overview", *DETAIL_ROWS)
    titles = [p["title"] for p in panels]
    assert len(set(titles)) == len(titles), "panel titles repeat"
    for panel in graph_panels(board):
        assert panel.get("targets"), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    # Rows and panels are laid out top to bottom in the order of the file, none overlapping.
    tops = [p["gridPos"]["y"] for p in panels]
    assert tops == sorted(tops)
    cells = set()
    for panel in panels:
        grid = panel["gridPos"]
        area = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells |= area
    latency = next(p for p in board["panels"] if p["title"] == "p95 latency vs 500 ms target")
    defaults = latency["fieldConfig"]["defaults"]
    assert defaults["unit"] == "ms"
    assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"
    assert 500 in [step["value"] for step in defaults["thresholds"]["steps"]]
    assert any('endpoint="/v1/check"' in t["expr"] for t in latency["targets"])


def test_every_panel_query_names_only_metrics_we_export() -> None:
    exported = exported_metric_names() | REDIS_EXPORTER_METRICS
    seen: set[str] = set()
    for title, expr in panel_queries(dashboard()):
        names = promql_metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        assert names <= exported, f"{title}: {sorted(names - exported)} are not exported"
        seen |= names
    # The guide's metrics and the pipeline's all have a place on the dashboard.
    for name in (
        "governance_checks_total",
        "governance_decisions_allowed",
        "governance_decisions_blocked",
        "governance_risk_score_sum",
        "request_latency_ms_bucket",
        "governance_consumer_lag",
        "governance_spool_depth",
        "governance_db_pool_in_use",
        "governance_dlq_messages_total",
        "governance_webhook_deliveries_total",
        # the guide's per-customer error rate and per-key view
        "governance_customer_responses_total",
        "governance_key_requests_total",
        "governance_key_rotations",
        "governance_key_age_seconds",
        "governance_redis_memory_used_bytes",
    ):
        assert name in seen, name


def test_metric_name_extraction_reads_promql_as_meant() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(request_latency_ms_bucket{endpoint="/v1/check"}[5m]))) '
        '/ on (instance) group_left sum without (job) (up{job=~"a|b"}) and topk(10, x_total offset 5m)'
    )
    assert promql_metric_names(expr) == {"request_latency_ms_bucket", "up", "x_total"}


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = []
    for n, (_, expr) in enumerate(panel_queries(dashboard())):
        concrete = expr.replace("$__rate_interval", "5m").replace("$__range", "6h").replace("$customer", ".*")
        rules.append({"record": f"dashboard:query_{n}", "expr": concrete})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"{len(rules)} rules found" in run_promtool("check", "rules", str(path))


def test_the_dashboard_exists_once() -> None:
    """docs/grafana-dashboard.json is the only copy: compose provisions Grafana from it."""
    copies = [
        path
        for path in ROOT.rglob("*.json")
        if not {".venv", ".state", "node_modules", ".git"} & set(path.parts) and '"panels"' in path.read_text()
    ]
    assert copies == [DASHBOARD]


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    provisioning = ROOT / "infra" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert "./docs/grafana-dashboard.json:/var/lib/grafana/dashboards/governance.json:ro" in volumes
    assert "./infra/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes


# --- Prometheus ------------------------------------------------------------------------------------------------


METRICS_TOKEN_SECRET = "/run/secrets/metrics_token"


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


# --- Sentry ----------------------------------------------------------------------------------------------------


class EnvelopeReceiver:
    """A stand-in for sentry.io: records every envelope posted to it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                receiver.headers.append(dict(self.headers))
                receiver.bodies.append(raw)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.server.server_address[1]}/1"

    def text(self) -> str:
        return "\n".join(body.decode(errors="replace") for body in self.bodies)

    def events(self) -> list[dict[str, Any]]:
        found = []
        for body in self.bodies:
            lines = body.decode(errors="replace").splitlines()
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found

    def wait_for_events(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sentry_sdk.flush(timeout=1)
            if events := self.events():
                return events
            time.sleep(0.1)
        return []


@pytest.fixture
def sentry_receiver() -> Iterator[EnvelopeReceiver]:
    receiver = EnvelopeReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def sentry_off_afterwards() -> Iterator[None]:
    """sentry_sdk.init is process-wide: close the client so later tests report nothing."""
    yield
    sentry_sdk.flush(timeout=2)
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def test_scrub_event_drops_bodies_credentials_and_masks_keys() -> None:
    key = generate_key("live").key
    admin = generate_key("admin").key
    event = {
        "message": f"failed for {key}",
        "exception": {"values": [{"type": "RuntimeError", "value": f"admin {admin} and Bearer tok3n.abc"}]},
        "request": {
            "url": "http://testserver/v1/check",
            "method": "POST",
            "query_string": f"api_key={key}",
            "headers": {"Authorization": f"Bearer {key}", "Cookie": "session=abc", "X-Api-Key": key, "Accept": "*/*"},
            "cookies": {"session": "abc"},
            "data": {"context": {"email": EMAIL}},
            "env": {"REMOTE_ADDR": "10.0.0.7"},
        },
        "breadcrumbs": {"values": [{"message": f"Authorization: Bearer {key}"}]},
        "tags": {"existing": "kept"},
    }
    scrubbed = scrub_event(event, role="workers", request_id="req_abc", customer_id="c-1")
    text = json.dumps(scrubbed)
    for secret in (key, admin, key.rsplit("_", 1)[1], admin.rsplit("_", 1)[1], "tok3n.abc", EMAIL, "10.0.0.7"):
        assert secret not in text
    assert "session=abc" not in text
    assert scrubbed["request"]["headers"] == {"Accept": "*/*"}
    assert scrubbed["tags"] == {"existing": "kept", "role": "workers", "request_id": "req_abc", "customer_id": "c-1"}
    assert scrubbed["message"] == f"failed for {mask_secrets(key)}"


def test_sentry_is_off_without_a_dsn(tmp_path: Path) -> None:
    settings = IngressSettings.model_validate({"ENVIRONMENT": "test", "GOVERNANCE_STATE_DIR": str(tmp_path)})
    assert settings.sentry_dsn == ""
    assert init_sentry("ingress", settings) is False
    assert not sentry_sdk.get_client().is_active()


@pytest.mark.usefixtures("sentry_off_afterwards")
async def test_error_in_a_request_reaches_sentry_tagged_and_scrubbed(
    sentry_receiver: EnvelopeReceiver, tmp_path: Path
) -> None:
    settings = IngressSettings.model_validate(
        {"ENVIRONMENT": "test", "GOVERNANCE_STATE_DIR": str(tmp_path), "SENTRY_DSN": sentry_receiver.dsn}
    )
    assert init_sentry("ingress", settings) is True
    key = generate_key("live").key
    customer_id = str(uuid.uuid4())
    marker = f"body-marker-{uuid.uuid4().hex}"

    app = create_app(settings)

    async def fail(request: Request) -> None:  # a test-only route: no real endpoint fails on purpose
        payload = await request.json()
        customer_id_var.set(customer_id)
        assert payload["note"] == marker  # read, so the framework holds the body: it must still not be sent
        raise RuntimeError(f"engine failed for {request.headers['authorization']} (key {request.headers['x-api-key']})")

    app.add_api_route("/test-only/fail", fail, methods=["POST"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.post(
            "/test-only/fail",
            json={"note": marker, "context": {"email": EMAIL}},
            headers={"Authorization": f"Bearer {key}", "Cookie": "session=s3cr3t-cookie", "X-Api-Key": key},
        )
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]

    events = sentry_receiver.wait_for_events()
    assert events, "no event reached the Sentry receiver"
    ours = [e for e in events if e.get("tags", {}).get("request_id") == request_id]
    assert ours, [e.get("tags") for e in events]
    event = ours[0]
    assert event["tags"]["role"] == "ingress"
    assert event["tags"]["customer_id"] == customer_id
    assert event["environment"] == "test"
    assert event["release"].startswith("governance@")
    assert "RuntimeError" in json.dumps(event.get("exception", {}))
    headers = {k.lower() for k in event.get("request", {}).get("headers", {})}
    assert not headers & {"authorization", "cookie", "x-api-key"}
    assert "data" not in event.get("request", {})

    everything = sentry_receiver.text()
    for secret in (key, key.rsplit("_", 1)[1], "s3cr3t-cookie", marker, EMAIL):
        assert secret not in everything, secret
    # The exception text arrived, masked as the logs mask it.
    assert "engine failed for Bearer" in everything
    assert f"(key {mask_secrets(key)[:-1]}" in everything


# --- logs and /metrics of a real ingress ---------------------------------------------------------------------------


async def test_logs_are_json_lines_without_keys_or_personal_data(
    settings: IngressSettings,
    migrated: str,
    pg_pool: asyncpg.Pool,
    tmp_path: Path,
    sentry_receiver: EnvelopeReceiver,
) -> None:
    admin_key = await insert_admin_key(pg_pool)
    seeded = await insert_customer(pg_pool, tier="pro")
    await add_policy(pg_pool, seeded.id, GUIDE_RULES, "Allow Internal Data Only")
    unknown = generate_key("live").key
    tampered = seeded.key[:-1] + ("A" if seeded.key[-1] != "A" else "B")
    used_keys = [admin_key, seeded.key, unknown, tampered]

    with run_server(settings, tmp_path / "server", LOG_LEVEL="INFO", SENTRY_DSN=sentry_receiver.dsn) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            admin = {"Authorization": f"Bearer {admin_key}"}
            created = await http.post(
                "/admin/customers", json={"name": f"logs-{uuid.uuid4().hex[:8]}", "tier": "pro"}, headers=admin
            )
            assert created.status_code == 201, created.text
            issued = await http.post(
                "/admin/keys", json={"customer_id": created.json()["id"], "name": "logs-key"}, headers=admin
            )
            assert issued.status_code == 201, issued.text
            issued_key = issued.json()["key"]
            used_keys.append(issued_key)
            for customer_key in (seeded.key, issued_key):
                for _ in range(3):
                    response = await http.post("/v1/check", json=GUIDE_STEP4, headers=_bearer(customer_key))
                    assert response.status_code == 200, response.text
            personal = {**GUIDE_STEP4, "context": {"user_id": "user_123", "email": EMAIL}}
            response = await http.post("/v1/check", json=personal, headers=_bearer(seeded.key))
            assert response.status_code == 200, response.text
            assert response.json()["allowed"] is False
            for bad in (unknown, tampered, seeded.key[:30], admin_key, f"{seeded.key}x"):
                response = await http.post("/v1/check", json=GUIDE_STEP4, headers=_bearer(bad))
                assert response.status_code == 401, (bad[:12], response.text)
            response = await http.get("/admin/customers", headers=_bearer(seeded.key))
            assert response.status_code in {401, 403}
            await http.get(f"/health?api_key={seeded.key}")
            await http.get(f"/v1/check/{seeded.key}")
    log = server.log()

    lines = [line for line in log.splitlines() if line.strip()]
    assert lines, "the ingress wrote no log"
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line[:200]!r}")
        assert isinstance(entry, dict), line
        for field in ("ts", "level", "role", "message"):
            assert field in entry, (field, line[:200])
        assert entry["role"] == "ingress"
        entries.append(entry)
    assert any(e["level"] == "info" for e in entries), "LOG_LEVEL=INFO wrote no info line"
    assert any("Sentry error reporting on" in e["message"] for e in entries)
    # Search by request id (docs/monitoring.md, "Logs"): the admin call's audit line carries the response's id.
    audit = [e for e in entries if e.get("request_id") == created.headers["x-request-id"]]
    assert any("customer.create" in e["message"] for e in audit), audit

    for key in used_keys:
        assert key not in log
        assert key.rsplit("_", 1)[1] not in log, "the secret part of a key is in the log"
    assert EMAIL not in log
    for key in used_keys:
        assert key.rsplit("_", 1)[1] not in sentry_receiver.text()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def test_metrics_endpoint_shows_the_guides_metrics(live_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    customer: SeededCustomer = await insert_customer(pg_pool, tier="pro")
    await add_policy(pg_pool, customer.id, GUIDE_RULES, "Allow Internal Data Only")
    limited = await insert_customer(pg_pool, tier="free")
    await pg_pool.execute(
        "UPDATE customers SET rate_limit_capacity = 1, rate_limit_window_s = 3600 WHERE id = $1", limited.id
    )
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        for _ in range(3):
            assert (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).status_code == 200
        personal = {**GUIDE_STEP4, "context": {"user_id": "user_123", "email": EMAIL}}
        blocked = await http.post("/v1/check", json=personal, headers=auth(customer))
        assert blocked.json()["allowed"] is False
        statuses = [(await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(limited))).status_code for _ in "ab"]
        assert statuses == [200, 429]
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    name = customer.name
    assert f'governance_checks_total{{customer="{name}"}}' in text
    assert f'governance_decisions_allowed{{customer="{name}"}}' in text
    assert f'governance_decisions_blocked{{customer="{name}"}}' in text
    assert f'governance_risk_score_bucket{{customer="{name}"' in text
    assert 'request_latency_ms_bucket{endpoint="/v1/check"' in text

    samples = _samples(text)
    who = frozenset({("customer", name)})
    assert samples[("governance_checks_total", who)] == 4
    assert samples[("governance_decisions_allowed", who)] == 3
    assert samples[("governance_decisions_blocked", who)] == 1
    assert samples[("governance_risk_score_count", who)] == 4
    assert samples[("governance_risk_score_sum", who)] >= 70
    limited_labels = frozenset({("customer", limited.name), ("key_id", limited.key_id)})
    assert samples[("governance_rate_limited_total", limited_labels)] == 1
    assert samples[("request_latency_ms_count", frozenset({("endpoint", "/v1/check")}))] >= 6
    # Never a key, never a raw path: the route template is the only endpoint label.
    assert customer.key not in text
    assert customer.key.rsplit("_", 1)[1] not in text
