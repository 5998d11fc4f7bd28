"""Issue 14's figure: the check path beside the heaviest analyst work, which runs in the read side's process.

The read side is filled with ``count`` stored decisions of one customer (signed as ingress signs them, produced to
the run's decisions topic and written by the audit writer), then the check's p99 at a constant rate is measured
alone and while an operator exports every row (``GET /logs?format=ndjson`` following the cursors, again and again)
and backtests a policy over the stored events, side by side in one run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from bench.workload import GUIDE_RULES, GUIDE_STEP4, policy_set
from infra.receipt_keys import ReceiptKeyring
from ingress.check.publisher import DecisionPublisher
from ingress.check.receipts import ReceiptSigner
from ingress.check.route import build_event
from ingress.engine import decide
from schemas.check import CheckRequest


def stored_events(count: int, customer_id: str, keys_dir: Path) -> list[bytes]:
    """``count`` signed decision events of one customer over the last ``count`` milliseconds, serialised."""
    from consumers.audit.authenticity import receipt_body_for  # the bench sits above every role

    decision = decide(CheckRequest.model_validate(GUIDE_STEP4), policy_set(1, distinct=False))
    signer = ReceiptSigner(ReceiptKeyring(keys_dir))
    now = datetime.now(UTC)
    template = build_event(
        request_id="req_bench_heavy",
        customer_id=uuid.UUID(customer_id),
        key_id="bench",
        decision=decision,
        decided_at=now,
        latency_ms=1.0,
        payload=GUIDE_STEP4,
        signer=signer,
    )
    out = []
    for index in range(count):
        event = template.model_copy(
            update={
                "event_id": uuid.uuid4(),
                "request_id": f"req_bench_heavy_{index}",
                "decided_at": now - timedelta(milliseconds=count - index),
            }
        )
        event = event.model_copy(update={"receipt": signer.sign(receipt_body_for(event))})
        out.append(event.model_dump_json().encode())
    return out


async def produce(bootstrap: str, topic: str, key: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=1 << 20
    )
    await producer.start()
    headers = [(k, v.encode()) for k, v in DecisionPublisher.headers().items()]
    try:
        for start in range(0, len(values), 5000):
            pending = [
                await producer.send(topic, v, key=key.encode(), headers=headers) for v in values[start : start + 5000]
            ]
            await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def export_all(http: httpx.AsyncClient, admin_key: str) -> int:
    """Every stored row through ``/logs?format=ndjson``, following ``X-Next-Cursor``; the rows read."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    params: dict[str, Any] = {"format": "ndjson", "limit": 1000, "from": "2000-01-01T00:00:00Z"}
    rows = 0
    while True:
        response = await http.get("/logs", params=params, headers=headers)
        response.raise_for_status()
        rows += response.content.count(b"\n")
        cursor = response.headers.get("x-next-cursor")
        if not cursor:
            return rows
        params["cursor"] = cursor


async def backtest(http: httpx.AsyncClient, admin_key: str, policy_id: str, count: int) -> dict[str, Any]:
    response = await http.post(
        f"/admin/policies/{policy_id}/backtest",
        json={"rules": {**GUIDE_RULES, "max_tokens": 100}, "max_decisions": count},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=300,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def analyst_work(
    http: httpx.AsyncClient, admin_key: str, policy_id: str, count: int, until: float
) -> dict[str, Any]:
    """Exports and backtests, each again as soon as it is done, until ``until`` (monotonic)."""
    done: dict[str, Any] = {
        "exports": 0,
        "rows_exported": 0,
        "backtests": 0,
        "backtests_refused": 0,
        "replayed": [],
        "errors": [],
    }

    async def exports() -> None:
        while time.monotonic() < until:
            done["rows_exported"] += await export_all(http, admin_key)
            done["exports"] += 1

    async def backtests() -> None:
        while time.monotonic() < until:
            try:
                result = await backtest(http, admin_key, policy_id, count)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 429:
                    raise
                # the admin key's backtest bucket (BACKTEST_RATE_LIMIT_CAPACITY a minute) is empty: as told, wait
                done["backtests_refused"] += 1
                wait_s = float(exc.response.headers.get("retry-after", "1"))
                await asyncio.sleep(min(wait_s, max(until - time.monotonic(), 0.0)))
                continue
            done["backtests"] += 1
            done["replayed"].append(result.get("replayed", result.get("decisions")))

    for outcome in await asyncio.gather(exports(), backtests(), return_exceptions=True):
        if isinstance(outcome, BaseException):
            done["errors"].append(repr(outcome)[:300])
    return done
