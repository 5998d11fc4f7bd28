"""docker-compose.yml as rendered by ``docker compose config``: Kafka with SASL/SCRAM, Redis with a password,
/metrics with a token, Grafana's password from the environment, monitoring behind a profile on loopback only."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.kafka import KafkaSecurity
from ingress.settings import IngressSettings
from tests.e2e.test_project_files import _compose_available

pytestmark = pytest.mark.skipif(
    not _compose_available(), reason="no docker client with the compose plugin (make tools builds it)"
)

ENV = {
    "POSTGRES_PASSWORD": "pg-secret",
    "CLICKHOUSE_PASSWORD": "ch-secret",
    "WEBHOOK_SECRETS_KEY": "c2VjcmV0cy1rZXktZm9yLXRoZS1jb25maWctY2hlY2s=",
    "REDIS_PASSWORD": "redis-secret",
    "KAFKA_PASSWORD": "kafka-secret",
    "METRICS_TOKEN": "metrics-token-0123456789abcdef",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
}
APPS = ("ingress", "consumers", "workers")
MONITORING = {"prometheus", "grafana", "redis-exporter"}


def _config(project_root: Path, *profiles: str) -> dict[str, Any]:
    command = ["docker", "compose", "-f", str(project_root / "docker-compose.yml")]
    for profile in profiles:
        command += ["--profile", profile]
    env = {k: v for k, v in os.environ.items() if k not in ENV and k != "ENVIRONMENT"} | ENV  # compose defaults it
    result = subprocess.run(
        [*command, "config", "--format", "json"], capture_output=True, text=True, check=False, cwd=project_root, env=env
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_every_kafka_client_authenticates_with_scram(project_root: Path) -> None:
    services = _config(project_root)["services"]
    for name in APPS:
        env = services[name]["environment"]
        security = KafkaSecurity.from_settings(IngressSettings.model_validate(env))
        assert security.protocol == "SASL_PLAINTEXT", name
        assert security.mechanism == "SCRAM-SHA-512", name
        assert security.username == "governance", name
        assert security.password == "kafka-secret", name
        assert security.client_options()["sasl_mechanism"] == "SCRAM-SHA-512", name
    kafka = services["kafka"]
    assert kafka["environment"]["KAFKA_SASL_PASSWORD"] == "kafka-secret"
    assert kafka["entrypoint"] == ["/bin/sh", "/opt/governance/kafka/start.sh"]
    properties = (project_root / "infra" / "compose" / "kafka" / "server.properties").read_text()
    listeners = next(line for line in properties.splitlines() if line.startswith("listeners="))
    reachable = [item for item in listeners.removeprefix("listeners=").split(",") if "127.0.0.1" not in item]
    assert reachable == ["SASL_PLAINTEXT://@LISTEN_HOST@:@CLIENT_PORT@"]  # nothing else leaves the container
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in properties


def test_redis_needs_its_password(project_root: Path) -> None:
    services = _config(project_root, "monitoring")["services"]
    redis = services["redis"]
    assert redis["command"][-2:] == ["--requirepass", "redis-secret"]
    for name in APPS:
        assert services[name]["environment"]["REDIS_URL"] == "redis://:redis-secret@redis:6379/0", name
    assert services["redis-exporter"]["environment"]["REDIS_PASSWORD"] == "redis-secret"


def test_settings_of_the_apps_are_the_production_ones(project_root: Path) -> None:
    env = _config(project_root)["services"]["ingress"]["environment"]
    settings = IngressSettings.model_validate(env)
    assert settings.environment == "production"
    assert settings.metrics_token == ENV["METRICS_TOKEN"]


def test_monitoring_runs_only_with_its_profile_on_loopback(project_root: Path) -> None:
    default = _config(project_root)["services"]
    assert not MONITORING & set(default)
    published = {name for name, service in default.items() if service.get("ports")}
    assert published == {"ingress", "dashboard"}
    monitoring = _config(project_root, "monitoring")
    services = monitoring["services"]
    assert set(services) >= MONITORING
    for name in ("prometheus", "grafana"):
        for port in services[name]["ports"]:
            assert port["host_ip"] == "127.0.0.1", name
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "grafana-secret"
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    # the scrape token reaches Prometheus as a secret file, from the same METRICS_TOKEN the apps check
    assert [s["source"] for s in services["prometheus"]["secrets"]] == ["metrics_token"]
    assert monitoring["secrets"]["metrics_token"]["environment"] == "METRICS_TOKEN"


def test_the_image_defaults_to_production(project_root: Path) -> None:
    dockerfile = (project_root / "Dockerfile").read_text()
    assert "ENVIRONMENT=production" in dockerfile
