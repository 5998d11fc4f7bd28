"""Print governance decisions as they happen: a downstream subscriber in a consumer group of its own.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python examples/subscriber.py

Environment: ``KAFKA_BOOTSTRAP_SERVERS`` (default 127.0.0.1:9092), ``DECISIONS_TOPIC`` (default
governance.decisions.v1), ``SUBSCRIBER_GROUP_ID`` (default example-decision-printer; use your own, never
``governance-audit``), ``FROM_BEGINNING=1`` to start at the oldest retained decision instead of now.

Needs only aiokafka (``pip install aiokafka``). The contract is docs/topics.md and docs/asyncapi.yaml: JSON
payloads (DecisionEvent v1), key = customer_id, headers event-type / schema-version / content-type. Delivery is
at-least-once, so the same event_id can arrive twice; this printer skips the ones it has seen recently.
"""

# ruff: noqa: T201 - printing decisions is what this example is for

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import OrderedDict
from typing import Any

from aiokafka import AIOKafkaConsumer

SEEN_LIMIT = 10_000


def header(headers: Any, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return bytes(value).decode("utf-8", errors="replace")
    return None


def describe(event: dict[str, Any]) -> str:
    verdict = "ALLOW" if event.get("allowed") else "BLOCK"
    rules = ",".join(v.get("rule", "?") for v in event.get("violations", [])) or "-"
    return (
        f"{event.get('decided_at')} {verdict:<5} risk={event.get('risk_score'):>3} "
        f"customer={event.get('customer_id')} request={event.get('request_id')} "
        f"rules={rules} reason={event.get('reason')!r}"
    )


def render(record: Any, seen: OrderedDict[str, None]) -> str | None:
    """The line to print for one record, or None when it is not a new v1 decision."""
    if header(record.headers, "event-type") not in (None, "decision"):
        return None
    if header(record.headers, "schema-version") not in (None, "1"):
        print(f"skipping schema-version {header(record.headers, 'schema-version')}", file=sys.stderr)
        return None
    try:
        event = json.loads(record.value)
    except (TypeError, ValueError):
        print(f"undecodable record at {record.partition}@{record.offset}", file=sys.stderr)
        return None
    event_id = str(event.get("event_id"))
    if event_id in seen:
        return None  # at-least-once: a redelivered or republished event
    seen[event_id] = None
    if len(seen) > SEEN_LIMIT:
        seen.popitem(last=False)
    return describe(event)


async def main() -> int:
    consumer = AIOKafkaConsumer(
        os.environ.get("DECISIONS_TOPIC", "governance.decisions.v1"),
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        group_id=os.environ.get("SUBSCRIBER_GROUP_ID", "example-decision-printer"),
        auto_offset_reset="earliest" if os.environ.get("FROM_BEGINNING") == "1" else "latest",
        enable_auto_commit=True,  # a printer may lose its place by a few seconds; a real sink commits after writing
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    seen: OrderedDict[str, None] = OrderedDict()
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    line = render(record, seen)
                    if line:
                        print(line, flush=True)
    finally:
        await consumer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
