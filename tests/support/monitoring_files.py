"""The monitoring files the tests read (docs/grafana-dashboard.json, infra/prometheus/), promtool to check them,
and the metric names a PromQL expression uses or our processes can expose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

# The two modules that define metrics: imported, so every metric is registered.
from infra import pipeline_metrics  # noqa: F401
from ingress.http import metrics  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
# The one dashboard file: the guide's path, imported by hand or provisioned by docker-compose.yml.
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
PROMETHEUS = ROOT / "infra" / "prometheus"
MONITORING_DOC = ROOT / "docs" / "monitoring.md"

PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
)


def exported_metric_names() -> set[str]:
    """Every sample name our processes can expose, from the metric objects themselves (ingress.http.metrics and
    infra.pipeline_metrics are imported above, so registered)."""
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


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus'); the Makefile installs it")
    return binary


def run_promtool(*args: str) -> str:
    result = subprocess.run([promtool(), *args], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
