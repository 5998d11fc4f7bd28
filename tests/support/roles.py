"""Real processes of the project's roles for tests that watch them from outside (Prometheus, /metrics): an
ingress (``tests.support.live_server.run_server``), ``python -m consumers`` and ``python -m workers`` with their
metrics on ports of their own, on topics of the test's own."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from infra.kafka_topics import delete_topics
from infra.local.launcher import APPS
from ingress.settings import IngressSettings
from tests.conftest import run_topic
from tests.support.live_server import LiveServer, project_launcher
from tests.support.prometheus_server import sample


@dataclass
class Topics:
    prefix: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "DECISIONS_TOPIC": f"{self.prefix}.decisions.v1",
            "ALERTS_TOPIC": f"{self.prefix}.alerts.v1",
            "SIGNALS_TOPIC": f"{self.prefix}.signals.v1",
            "DLQ_TOPIC": f"{self.prefix}.decisions.dlq",
        }


@pytest.fixture
async def topics(settings: IngressSettings) -> AsyncIterator[Topics]:
    """Topics of the test's own, so only its records count; removed afterwards."""
    own = Topics(run_topic(f"alerts.{uuid.uuid4().hex[:10]}"))
    yield own
    await delete_topics(settings.kafka_bootstrap_servers, own.env.values())


@dataclass
class Role:
    """A ``python -m consumers`` or ``python -m workers`` process with its metrics on a port of its own."""

    proc: subprocess.Popen[bytes]
    metrics_port: int
    log_path: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def metrics(self) -> str:
        return httpx.get(f"http://{self.target}/metrics", timeout=5).text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)


@contextmanager
def run_role(settings: IngressSettings, module: str, state: Path, *args: str, **overrides: str) -> Iterator[Role]:
    """``python -m <module> <args>`` (``consumers`` or ``workers``) through the launcher ``make up`` uses, on
    ``state`` with its metrics on a free port."""
    with project_launcher(settings, state, [replace(APPS[module], args=args)], **overrides) as launcher:
        launcher.start()
        proc = launcher.process(module)
        assert proc is not None
        yield Role(proc, launcher.ports[module], launcher.log_path(module))


def ingress_target(server: LiveServer) -> str:
    return server.url.removeprefix("http://")


def audit_target(server: LiveServer) -> str:
    """The read side's ``host:port``: with the embedded ClickHouse the audit writer's metrics are there."""
    return server.audit_url.removeprefix("http://")


def metric_of(url: str, name: str, **labels: str) -> float | None:
    return sample(httpx.get(f"{url}/metrics", timeout=5).text, name, **labels)


def wait_for_metric(read: Callable[[], float | None], *, at_least: float, what: str, timeout: float = 90.0) -> float:
    """Poll ``read()`` (a sample's value, or None) until it reaches ``at_least``; return it."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = read()
        if value is not None and value >= at_least:
            return float(value)
        time.sleep(0.5)
    raise AssertionError(f"{what}: {value} after {timeout:.0f} s, wanted at least {at_least}")


async def wait_ready(url: str, component: str, timeout: float = 60.0) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if (await http.get("/ready")).json()["components"][component]["status"] == "up":
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{component} not up at {url}")
            await asyncio.sleep(0.3)
