"""A Prometheus server of the test's own (Debian's ``prometheus``, installed by ``make tools``) scraping real
processes every second, with the project's alert rules loaded; queried over its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
ALERT_RULES = ROOT / "infra" / "prometheus" / "alerts.yml"


@dataclass
class PrometheusServer:
    url: str
    folder: Path
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        return (self.folder / "prometheus.log").read_text(errors="replace")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (an empty list: no data)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body.get("status") == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return result

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """The alert's active instances (pending or firing), from the rule manager."""
        body = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        return [a for a in body["data"]["alerts"] if a["labels"].get("alertname") == name]

    def wait_until(self, condition: Any, *, timeout: float = 90.0, what: str = "the condition") -> Any:
        """Poll ``condition()`` until it returns something truthy; return it. Bounded, then fail with the log."""
        deadline = time.monotonic() + timeout
        while True:
            found = condition()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not seen within {timeout:.0f} s; prometheus log:\n{self.log()[-2000:]}")
            time.sleep(0.5)

    def wait_for_alert(self, name: str, *, timeout: float = 90.0) -> list[dict[str, Any]]:
        """Until the alert's expression holds: pending (waiting out its ``for:``) or firing."""
        found: list[dict[str, Any]] = self.wait_until(
            lambda: [a for a in self.alerts(name) if a["state"] in {"pending", "firing"}],
            timeout=timeout,
            what=f"alert {name} pending or firing",
        )
        return found

    def wait_for_targets(self, *, timeout: float = 60.0) -> None:
        """Until every target has been scraped successfully at least twice (rates need two samples)."""

        def healthy() -> bool:
            body = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
            active = body["data"]["activeTargets"]
            return bool(active) and all(t["health"] == "up" for t in active)

        self.wait_until(healthy, timeout=timeout, what="every target up")
        time.sleep(2.5)


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian package 'prometheus'); `make tools` installs it")
    return binary


@contextmanager
def prometheus_server(
    targets: Mapping[str, Sequence[str]], *, rules: Sequence[Path] = (ALERT_RULES,)
) -> Iterator[PrometheusServer]:
    """Scrape ``targets`` (job name -> ``host:port`` list) every second and evaluate ``rules`` every second."""
    binary = prometheus_binary()
    folder = Path(tempfile.mkdtemp(prefix="governance-test-prometheus-"))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(path) for path in rules],
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": list(addresses)}]}
            for job, addresses in targets.items()
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (folder / "prometheus.log").open("ab")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = PrometheusServer(f"http://127.0.0.1:{port}", folder, proc)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {server.log()[-2000:]}")
            try:
                return httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        server.wait_until(ready, timeout=30, what="prometheus ready")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def sample(text: str, name: str, **labels: str) -> float | None:
    """One sample's value from a /metrics text (the first whose labels include ``labels``)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return None
