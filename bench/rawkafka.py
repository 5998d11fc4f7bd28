"""The Kafka reference: a raw aiokafka producer (``acks=all``, idempotent, nothing else set) sending events of the
check's size to the same broker at a constant rate (open loop). Latency runs from a send's scheduled instant to its
acknowledgement. Run as ``python -m bench.rawkafka`` with a JSON spec on stdin; prints one JSON result.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.environment import answer_pinned_json, run_pinned_json
from bench.timing import percentile
from infra.kafka_topics import ensure_topics


@dataclass(frozen=True)
class ProduceSpec:
    bootstrap: str
    topic: str
    size: int
    rate: float
    seconds: float
    keys: int = 50


async def _run(spec: ProduceSpec) -> dict[str, Any]:
    await ensure_topics(spec.bootstrap, [spec.topic])  # the project's partitions (6), as its topics have
    producer = AIOKafkaProducer(bootstrap_servers=spec.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    value = os.urandom(spec.size // 2).hex().encode()[: spec.size]
    keys = [f"customer-{i}".encode() for i in range(spec.keys)]
    latencies: list[float] = []
    errors = 0

    async def one(intended: float, key: bytes) -> None:
        nonlocal errors
        try:
            await producer.send_and_wait(spec.topic, value, key=key)
        except Exception:  # noqa: BLE001 - counted, as the check counts a failed publish
            errors += 1
            return
        latencies.append(time.perf_counter() - intended)

    try:
        await producer.send_and_wait(spec.topic, value, key=keys[0])  # connected and metadata known
        total = max(1, int(spec.rate * spec.seconds))
        interval = 1.0 / spec.rate
        started = time.perf_counter() + 0.05
        tasks = []
        sent = 0
        while sent < total:
            now = time.perf_counter()
            due = started + sent * interval
            if due > now:
                await asyncio.sleep(due - now)
                continue
            while sent < total and started + sent * interval <= now:
                tasks.append(asyncio.create_task(one(started + sent * interval, keys[sent % len(keys)])))
                sent += 1
        await asyncio.gather(*tasks)
    finally:
        await producer.stop()
    ordered = sorted(latencies)
    return {
        "rate": spec.rate,
        "sent": sent,
        "acked": len(ordered),
        "errors": errors,
        "event_bytes": spec.size,
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "p999_ms": round(percentile(ordered, 0.999) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3) if ordered else None,
    }


async def raw_produce(spec: ProduceSpec, *, cpu: int | None) -> dict[str, Any]:
    """Run the producer in its own process (pinned to ``cpu``, where the check processes run)."""
    return await run_pinned_json("bench.rawkafka", spec.__dict__, cpu, "raw producer")


def main() -> None:
    answer_pinned_json(lambda raw: _run(ProduceSpec(**raw)))


if __name__ == "__main__":
    main()
