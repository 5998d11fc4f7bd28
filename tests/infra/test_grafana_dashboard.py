"""The Grafana dashboard (docs/grafana-dashboard.json): the guide's eleven panels first, every query valid PromQL
(checked with Debian's ``promtool``) naming only metrics we export, one copy, provisioned by compose."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.monitoring_files import (
    DASHBOARD,
    ROOT,
    dashboard,
    exported_metric_names,
    graph_panels,
    panel_queries,
    promql_metric_names,
    run_promtool,
)

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
