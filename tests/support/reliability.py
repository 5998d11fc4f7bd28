"""What the reliability scenarios share: real ingress processes, a steady load client, and the audit count.

How a scenario counts (docs/reliability.md): the load client records the ``event_id`` of every 200. After the
system settles, ``lost`` is the recorded ids missing from ClickHouse (read through ``GET /logs?format=ndjson`` with
an admin key, following the cursor) and ``dup`` is ``rows - unique_event_ids`` of the customer's raw rows
(``GET /admin/analytics/integrity``, which reads without ``FINAL``, so a decision stored twice shows).

Every load is bounded in rate, count and time; every server, broker and database a scenario harms is its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from infra.kafka_topics import TopicSettings
from ingress.settings import IngressSettings
from tests.conftest import LiveServer, run_server, run_topic

ROOT = Path(__file__).resolve().parents[2]
FIGURES_FILE = ROOT / "test-artifacts" / "reliability" / "figures.jsonl"

CHECK = {
    "operations": [{"type": "llm_call", "model": "gpt-4", "tokens": 500}],
    "context": {"user_id": "user_123", "session_id": "session_456"},
}
# Loads here run well under any tier's bucket unless a scenario is about the limit itself.
UNLIMITED = {
    "RATE_LIMIT_FREE_CAPACITY": "100000",
    "RATE_LIMIT_PRO_CAPACITY": "100000",
    "READ_RATE_LIMIT_CAPACITY": "100000",
    "BACKTEST_RATE_LIMIT_CAPACITY": "100000",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- servers ----------------------------------------------------------------------------------------------------


def isolated_env(**overrides: str) -> dict[str, str]:
    """Topics and an audit group of the scenario's own, so its server reads only its own decisions."""
    suffix = uuid.uuid4().hex[:10]
    env = {
        "DECISIONS_TOPIC": run_topic(f"rel.{suffix}.decisions.v1"),
        "DLQ_TOPIC": run_topic(f"rel.{suffix}.decisions.dlq"),
        "ALERTS_TOPIC": run_topic(f"rel.{suffix}.alerts.v1"),
        "SIGNALS_TOPIC": run_topic(f"rel.{suffix}.signals.v1"),
        "AUDIT_GROUP_ID": f"rel-audit-{suffix}",
        "AUDIT_FLUSH_INTERVAL_S": "0.5",
        **UNLIMITED,
    }
    env.update(overrides)
    return env


def ingress(
    settings: IngressSettings, state: Path, *, relay: bool = True, **options: str
) -> AbstractContextManager[LiveServer]:
    """The processes ``make up`` runs for the decision path, on free ports: the check path (``python -m
    <module>``), its audit read side (the embedded ClickHouse and the audit writer, under ``state``) and, with
    ``relay``, ``python -m workers`` relaying the spool under ``state``. Started on the same ``state`` again, they
    take over that spool and that ClickHouse."""
    return run_server(settings, state, relay=relay, **options)


async def wait_ready(url: str, component: str = "kafka", timeout: float = 30.0) -> None:
    """Until ``/ready`` reports the component up (the producer and the writer connect in the background)."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                if (await http.get("/ready")).json()["components"][component]["status"] == "up":
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{component} not up at {url} within {timeout} s")
            await asyncio.sleep(0.3)


async def ensure_topics(bootstrap: str, *names: str, partitions: int = TopicSettings().kafka_topic_partitions) -> None:
    """Create the topics up front, so a consumer subscribing before the first publish sees them at once; with the
    partitions the processes create them with, so none of them grows a topic under another's feet (a consumer
    assigned before the growth reaches the new partitions only at its next metadata refresh)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def group_lag(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(records on the topic, of them not yet committed by the group), read from Kafka itself."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        committed = await admin.list_consumer_group_offsets(group)
        done = {tp: meta.offset for tp, meta in committed.items() if tp.topic == topic and meta.offset >= 0}
        total = sum(ends.values())
        return total, sum(max(end - done.get(tp, 0), 0) for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


# --- the process, seen from outside -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample of a Prometheus exposition (0 when absent)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- load -------------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What a load saw: statuses (or the exception's name), the event ids of the 200s, latencies."""

    statuses: Counter[str] = field(default_factory=Counter)
    event_ids: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    retry_after: Counter[str] = field(default_factory=Counter)  # on 503s: whether Retry-After came with it
    sent: int = 0
    seconds: float = 0.0

    def add(self, other: Tally) -> Tally:
        self.statuses.update(other.statuses)
        self.event_ids.extend(other.event_ids)
        self.latencies_ms.extend(other.latencies_ms)
        self.retry_after.update(other.retry_after)
        self.sent += other.sent
        self.seconds += other.seconds
        return self

    def answered(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.statuses.items()))

    def of(self, status: int | str) -> int:
        return self.statuses.get(str(status), 0)

    def server_errors(self) -> int:
        return sum(v for k, v in self.statuses.items() if k.isdigit() and k.startswith("5") and k != "503")

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def steady_load(
    url: str,
    key: str,
    *,
    rate: float,
    duration_s: float,
    payload: dict[str, Any] | None = None,
    path: str = "/v1/check",
    timeout_s: float = 10.0,
    max_in_flight: int = 64,
    stop: asyncio.Event | None = None,
) -> Tally:
    """Send ``rate`` requests per second for ``duration_s`` (or until ``stop``), each on its own schedule so a slow
    answer does not slow the others; at most ``max_in_flight`` wait at once. Bounded: ``rate * duration_s`` sends."""
    tally = Tally()
    body = payload or CHECK
    gate = asyncio.Semaphore(max_in_flight)
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)

    async def one(http: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        try:
            response = await http.post(path, json=body, headers=bearer(key))
        except httpx.HTTPError as exc:
            tally.statuses[type(exc).__name__] += 1
            return
        finally:
            gate.release()
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        tally.statuses[str(response.status_code)] += 1
        if response.status_code == 200:
            tally.event_ids.append(response.json()["event_id"])
        elif response.status_code == 503:
            tally.retry_after["with" if "retry-after" in response.headers else "without"] += 1

    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as http:
        tasks: list[asyncio.Task[None]] = []
        began = time.monotonic()
        total = int(rate * duration_s)
        for i in range(total):
            if stop is not None and stop.is_set():
                break
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                if stop is None:
                    await asyncio.sleep(delay)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                    if stop.is_set():
                        break
            await gate.acquire()
            tasks.append(asyncio.create_task(one(http)))
            tally.sent += 1
        await asyncio.gather(*tasks)
        tally.seconds = time.monotonic() - began
    return tally


# --- the audit count --------------------------------------------------------------------------------------------


@dataclass
class AuditCount:
    recorded: int  # 200s the load client saw
    stored: int  # distinct event ids of the customer in ClickHouse
    rows: int  # raw rows of the customer (without FINAL)
    lost: int
    dup: int
    settle_s: float


async def integrity(http: httpx.AsyncClient, admin_key: str, customer_id: uuid.UUID | str) -> tuple[int, int]:
    response = await http.get(
        "/admin/analytics/integrity", params={"customer_id": str(customer_id)}, headers=bearer(admin_key)
    )
    response.raise_for_status()
    body = response.json()
    return int(body["rows"]), int(body["unique_event_ids"])


async def stored_event_ids(http: httpx.AsyncClient, admin_key: str, customer_id: uuid.UUID | str) -> set[str]:
    """Every event id of the customer, through ``GET /logs?format=ndjson`` page by page (the cursor header)."""
    found: set[str] = set()
    params: dict[str, Any] = {"customer_id": str(customer_id), "format": "ndjson", "limit": 1000}
    for _ in range(1000):  # bounded: 1,000 pages of 1,000
        response = await http.get("/logs", params=params, headers=bearer(admin_key))
        response.raise_for_status()
        for line in response.text.splitlines():
            if line.strip():
                found.add(json.loads(line)["event_id"])
        cursor = response.headers.get("x-next-cursor")
        if not cursor:
            return found
        params["cursor"] = cursor
    raise AssertionError("more pages than expected")


async def settle(
    url: str,
    admin_key: str,
    customer_id: uuid.UUID | str,
    recorded: list[str] | set[str],
    *,
    timeout: float = 60.0,
    quiet_s: float = 2.0,
) -> AuditCount:
    """Wait until every recorded id is in ClickHouse (or ``timeout``), then ``quiet_s`` more for late duplicates."""
    expected = set(recorded)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        stored: set[str] = set()
        while True:
            with contextlib.suppress(httpx.HTTPError):
                _, unique = await integrity(http, admin_key, customer_id)
                if unique >= len(expected):
                    stored = await stored_event_ids(http, admin_key, customer_id)
                    if expected <= stored:
                        break
            if time.monotonic() - started > timeout:
                break
            await asyncio.sleep(0.5)
        settled = time.monotonic() - started
        await asyncio.sleep(quiet_s)
        rows, unique = await integrity(http, admin_key, customer_id)
        stored = await stored_event_ids(http, admin_key, customer_id)
    return AuditCount(
        recorded=len(expected),
        stored=unique,
        rows=rows,
        lost=len(expected - stored),
        dup=rows - unique,
        settle_s=round(settled, 1),
    )


# --- figures ----------------------------------------------------------------------------------------------------


def figures(scenario: int, title: str, **values: Any) -> None:
    """One line per scenario for docs/reliability.md (printed, with ``-s``), also kept in test-artifacts."""
    line = f"FIGURES #{scenario} {title}: " + " | ".join(f"{k}={v}" for k, v in values.items())
    print(f"\n{line}")
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES_FILE.open("a") as out:
        record = {"scenario": scenario, "title": title, "at": time.time(), **values}
        out.write(json.dumps(_jsonable(record), default=str) + "\n")


def _jsonable(value: Any) -> Any:
    """Figures may hold dicts keyed by tuples (a finding is (operation, check)): JSON keys must be strings."""
    if isinstance(value, dict):
        return {_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _key(key: Any) -> str:
    return " / ".join(map(str, key)) if isinstance(key, tuple) else str(key)


@contextlib.asynccontextmanager
async def background(coro: Any) -> AsyncIterator[asyncio.Task[Any]]:
    """Run a load beside the fault steps; cancelled if the block fails, awaited by the caller otherwise."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
