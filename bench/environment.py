"""A bench environment of its own beside the local stack: a database, topics, a state folder, a port.

Nothing is shared with ``make up`` or a test run but the service processes themselves: the database
``governance_bench_<run>`` is created, migrated and dropped; topics are ``bench.<run>.*`` and deleted after; the
server listens on a free port and keeps its embedded ClickHouse, spool and receipt keys under
``.state/bench/runs/<run>/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from bench.server import CONSTANT_PATH
from infra.migrate import migrate_postgres
from infra.settings import LOCAL_DATABASE_URL, PROJECT_ROOT
from ingress.auth.keys import generate_key, hash_key

BENCH_STATE = PROJECT_ROOT / ".state" / "bench"


@dataclass(frozen=True)
class Services:
    """Where the local stack listens. ``database_url`` is any database of the cluster: the bench creates its own."""

    database_url: str
    redis_url: str
    kafka_bootstrap_servers: str

    @classmethod
    def from_environment(cls) -> Services:
        return cls(
            database_url=os.environ.get("DATABASE_URL", LOCAL_DATABASE_URL),
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """``command`` pinned to one CPU with taskset, when there is more than one CPU and taskset exists."""
    taskset = shutil.which("taskset")
    if cpu is None or taskset is None or cpu_count() < 2:
        return command
    return [taskset, "-c", str(cpu), *command]


async def run_pinned_json(module: str, spec: dict[str, Any], cpu: int | None, what: str) -> dict[str, Any]:
    """``python -m <module>`` in a process of its own (pinned to ``cpu``), ``spec`` as JSON on its stdin, its JSON
    answer on stdout."""
    proc = await asyncio.create_subprocess_exec(
        *pinned([sys.executable, "-m", module], cpu),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(json.dumps(spec).encode())
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed: {err.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


def answer_pinned_json(run: Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]) -> None:
    """The child's side of ``run_pinned_json``: the spec from stdin, ``run`` on uvloop where installed (as the
    servers run), the answer as one JSON line on stdout."""
    spec: dict[str, Any] = json.loads(sys.stdin.read())
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    sys.stdout.write(json.dumps(result) + "\n")


async def create_customer_with_policy(
    http: httpx.AsyncClient, admin: dict[str, str], name: str, policy_name: str, rules: dict[str, Any]
) -> tuple[str, str]:
    """A pro customer through the admin API, with a rate limit the load never reaches (set the way an operator
    sets it, so rate limiting stays on and costs what it costs) and one policy; (customer id, policy id)."""
    created = await http.post("/admin/customers", json={"name": name, "tier": "pro"}, headers=admin)
    created.raise_for_status()
    customer_id = str(created.json()["id"])
    patched = await http.patch(
        f"/admin/customers/{customer_id}",
        json={"rate_limit": {"capacity": 1_000_000_000, "window_s": 1}},
        headers=admin,
    )
    patched.raise_for_status()
    policy = await http.post(
        "/admin/policies", json={"customer_id": customer_id, "name": policy_name, "rules": rules}, headers=admin
    )
    policy.raise_for_status()
    return customer_id, str(policy.json()["id"])


@dataclass
class BenchServer:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mib(self) -> float:
        """Resident memory of the server process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("VmRSS not found")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass
class Tenant:
    customer_id: str
    keys: list[str] = field(default_factory=list)


@dataclass
class BenchEnvironment:
    services: Services
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    state: Path = field(init=False)
    database_url: str = field(init=False)
    admin_key: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.state = BENCH_STATE / "runs" / self.run_id
        base, _, _ = self.services.database_url.rpartition("/")
        self.database_url = f"{base}/{self.database_name}"

    @property
    def database_name(self) -> str:
        return f"governance_bench_{self.run_id}"

    def topic(self, name: str) -> str:
        return f"bench.{self.run_id}.{name}"

    @property
    def topics(self) -> dict[str, str]:
        return {
            "DECISIONS_TOPIC": self.topic("decisions.v1"),
            "ALERTS_TOPIC": self.topic("alerts.v1"),
            "DLQ_TOPIC": self.topic("decisions.dlq"),
            "SIGNALS_TOPIC": self.topic("signals.v1"),
        }

    # -- database ----------------------------------------------------------------------------------------------

    async def create_database(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        admin = await asyncpg.connect(self.services.database_url)
        try:
            await admin.execute(f'CREATE DATABASE "{self.database_name}"')
        finally:
            await admin.close()
        await migrate_postgres(self.database_url)
        generated = generate_key("admin")
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(
                "INSERT INTO admin_keys (key_id, key_hash, name) VALUES ($1, $2, $3)",
                generated.key_id,
                hash_key(generated.key, rounds=4),
                f"bench-{self.run_id}",
            )
        finally:
            await conn.close()
        self.admin_key = generated.key

    async def drop_database(self) -> None:
        admin = await asyncpg.connect(self.services.database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
        finally:
            await admin.close()

    async def delete_topics(self, extra: tuple[str, ...] = ()) -> None:
        client = AIOKafkaAdminClient(bootstrap_servers=self.services.kafka_bootstrap_servers)
        await client.start()
        try:
            existing = set(await client.list_topics())
            doomed = [t for t in (*self.topics.values(), *extra) if t in existing]
            if doomed:
                await client.delete_topics(doomed)
        finally:
            await client.close()

    # -- the server ----------------------------------------------------------------------------------------------

    def server_env(self, port: int, **overrides: str) -> dict[str, str]:
        keep = ("DATABASE_", "REDIS_", "KAFKA_", "CLICKHOUSE_", "AUDIT_", "API_", "LOG_LEVEL", "ENVIRONMENT")
        env = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
        env.update(
            {
                "ENVIRONMENT": "local",
                "API_PORT": str(port),
                "GOVERNANCE_STATE_DIR": str(self.state),
                "CLICKHOUSE_URL": f"chdb://{self.state / 'clickhouse'}",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.services.redis_url,
                "KAFKA_BOOTSTRAP_SERVERS": self.services.kafka_bootstrap_servers,
                "AUDIT_GROUP_ID": f"bench-audit-{self.run_id}",
                # The end-to-end poller reads /v1/decisions every 50 ms: the read bucket must not refuse it.
                "READ_RATE_LIMIT_CAPACITY": "1000000",
                **self.topics,
            }
        )
        env.update(overrides)
        return env

    @contextlib.contextmanager
    def server(self, *, cpu: int | None, **overrides: str) -> Iterator[BenchServer]:
        """The bench server, pinned to ``cpu``, until the block ends."""
        port = free_port()
        log_path = self.state / "ingress.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - our interpreter, our module
                pinned([sys.executable, "-m", "bench.server"], cpu),
                env=self.server_env(port, **overrides),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
            )
        server = BenchServer(f"http://127.0.0.1:{port}", proc, log_path)
        try:
            _wait_ready(server)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def remove_state(self) -> None:
        """Drop the run's data; its server log stays, as .state/bench/last-ingress.log."""
        log = self.state / "ingress.log"
        if log.exists():
            shutil.copyfile(log, BENCH_STATE / "last-ingress.log")
        if (self.state / "logs").is_dir():  # the stack's processes' logs
            shutil.rmtree(BENCH_STATE / "last-logs", ignore_errors=True)
            shutil.copytree(self.state / "logs", BENCH_STATE / "last-logs")
        shutil.rmtree(self.state, ignore_errors=True)

    # -- tenants, through the admin API ----------------------------------------------------------------------------

    async def create_tenant(self, http: httpx.AsyncClient, name: str, *, keys: int, rules: dict[str, Any]) -> Tenant:
        """A pro customer with ``keys`` keys and one policy, and a rate limit that the load never reaches."""
        admin = {"Authorization": f"Bearer {self.admin_key}"}
        customer_id, _policy_id = await create_customer_with_policy(http, admin, name, f"{name} policy", rules)
        tenant = Tenant(customer_id)
        for index in range(keys):
            key = await http.post(
                "/admin/keys", json={"customer_id": customer_id, "name": f"{name} key {index}"}, headers=admin
            )
            key.raise_for_status()
            tenant.keys.append(key.json()["key"])
        return tenant


def _wait_ready(server: BenchServer, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the bench server exited:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            ready = httpx.get(f"{server.url}/ready", timeout=2)
            constant = httpx.post(f"{server.url}{CONSTANT_PATH}", timeout=2)
            if ready.status_code == 200 and constant.status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the bench server was not ready within {timeout_s:.0f} s:\n{server.log_tail()}")


async def wait_until(predicate: Any, timeout_s: float, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval_s)
    return False
