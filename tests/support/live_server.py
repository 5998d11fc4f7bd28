"""The project's processes as ``make up`` starts them, pointed at the test run's services: through the one launcher
(``infra/local/launcher.py``) that ``make up`` and the benchmark use, on free ports and a state folder of the test's.

``tests/conftest.py`` re-exports ``LiveServer``, ``run_server`` and ``server_env``, which most tests import from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from infra.local.launcher import APPS, App, Launcher, free_ports
from ingress.settings import IngressSettings
from tests.support.receipt_keyring import RECEIPT_KEYS_DIR


def server_env(settings: IngressSettings, **overrides: str) -> dict[str, str]:
    """Environment for a real process of the project pointed at the test run's services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "KAFKA_", "CLICKHOUSE_"))}
    env.update(
        {
            "ENVIRONMENT": "test",
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "DECISIONS_TOPIC": settings.decisions_topic,
            "ALERTS_TOPIC": settings.alerts_topic,
            "DLQ_TOPIC": settings.dlq_topic,
            "SIGNALS_TOPIC": settings.signals_topic,
            "BCRYPT_ROUNDS": "4",
            "RECEIPT_KEYS_DIR": str(RECEIPT_KEYS_DIR),
            # each server process reads the decisions with an audit consumer group of its own
            "AUDIT_GROUP_ID": f"governance-audit-{uuid.uuid4().hex[:8]}",
            "LOG_LEVEL": "WARNING",
            "API_WORKERS": "1",
        }
    )
    env.update(overrides)
    return env


def project_launcher(settings: IngressSettings, state: Path, apps: list[str | App], **overrides: str) -> Launcher:
    """A launcher of ``apps`` (names or ``App``s of ``infra.local.launcher``) on ``state`` and free ports, with
    ``server_env`` and ``overrides``; the embedded ClickHouse is the state folder's, as in ``make up``."""
    return Launcher(
        state,
        free_ports(),
        environ=server_env(settings),
        overrides=overrides,
        apps=[APPS[app] if isinstance(app, str) else app for app in apps],
        python=sys.executable,
    )


@dataclass
class LiveServer:
    """The ingress role as ``make up`` runs it: the check path (``python -m ingress``, ``proc``) on ``url``, and the
    audit read side (``python -m ingress.audit``, ``audit``) that it forwards the history paths to; with a relay,
    ``python -m workers`` (``relay``)."""

    launcher: Launcher

    @property
    def url(self) -> str:
        return self.launcher.url("ingress")

    @property
    def audit_url(self) -> str:
        return self.launcher.url("ingress-audit")

    @property
    def env(self) -> dict[str, str]:
        """The environment the processes share."""
        return self.launcher.env

    def _process(self, name: str) -> subprocess.Popen[bytes] | None:
        return self.launcher.process(name) if name in self.launcher.apps else None

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        proc = self._process("ingress")
        assert proc is not None
        return proc

    @property
    def audit(self) -> subprocess.Popen[bytes] | None:
        return self._process("ingress-audit")

    @property
    def read_side(self) -> subprocess.Popen[bytes]:
        assert self.audit is not None
        return self.audit

    @property
    def relay(self) -> subprocess.Popen[bytes] | None:
        return self._process("workers")

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [proc for proc in (self.proc, self.audit, self.relay) if proc is not None]

    @property
    def log_path(self) -> Path:
        return self.launcher.log_path("ingress")

    @property
    def audit_log_path(self) -> Path:
        return self.launcher.log_path("ingress-audit")

    def log(self) -> str:
        """What every process of the server logged (JSON lines, each naming its role)."""
        return "".join(self.launcher.log(name) for name in ("ingress", "ingress-audit", "workers"))


@contextmanager
def run_server(
    settings: IngressSettings,
    state: Path,
    *,
    module: str = "ingress",
    audit_module: str = "ingress.audit",
    relay: bool = False,
    **overrides: str,
) -> Iterator[LiveServer]:
    """The check path and its audit read side as real processes, on free ports, with ``state`` as their state
    folder (the read side's embedded ClickHouse and audit writer live under it, the logs in ``state/logs``).
    Started on the same ``state`` again, they take over that spool and that ClickHouse. ``module`` and
    ``audit_module`` replace the two modules. ``relay``: also ``python -m workers``, which relays the spool under
    ``state`` to Kafka as in ``make up``."""
    apps: list[str | App] = [
        replace(APPS["ingress-audit"], module=audit_module),
        replace(APPS["ingress"], module=module),
    ]
    if relay:
        apps.append(APPS["workers"])
    with project_launcher(settings, state, apps, **overrides) as launcher:
        launcher.start()
        yield LiveServer(launcher)
