"""Helpers for the alerting and webhook tests: a local webhook receiver, events produced to the run's topics,
the alerting consumer and the delivery worker started in-process with short intervals, waiting.

(A module of helpers, not tests.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from consumers.alerts import AlertingConsumer, AlertingSettings
from infra.secret_box import SecretBox
from ingress.admin.alerting import rules as alert_rules, webhooks
from ingress.settings import IngressSettings
from schemas import topics
from schemas.alerting import AlertRuleCreate, WebhookCreate, WebhookCreated
from schemas.decision_event import DecisionEvent, PersonalDataFinding
from schemas.receipt import new_request_salt, request_digest
from schemas.signal_event import SignalEvent
from tests.support.audit import signed
from tests.support.processes import free_port
from workers.webhooks import WebhookDeliveryWorker, WebhookSettings


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class WebhookReceiver:
    """A tiny HTTP/1.1 server on 127.0.0.1 that records every request and answers ``status`` (or what
    ``respond`` says). Not started = the endpoint is down (connection refused)."""

    port: int = field(default_factory=free_port)
    status: int = 200
    delay_s: float = 0.0
    headers_out: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/alerts"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode()
            headers: dict[str, str] = {}
            while True:
                line = (await reader.readline()).decode().rstrip("\r\n")
                if not line:
                    break
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            path = request_line.split(" ")[1] if " " in request_line else ""
            self.received.append(Received(path, headers, body, time.time()))
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers_out.items())
            writer.write(
                f"HTTP/1.1 {self.status} X\r\nContent-Length: 2\r\nConnection: close\r\n{extra}\r\nok".encode()
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def transitions(self, customer_id: uuid.UUID | str | None = None) -> list[str]:
        """The ``X-Governance-Event`` of each request (for one subject, if given), in arrival order."""
        wanted = None if customer_id is None else str(customer_id)
        return [
            r.headers.get("x-governance-event", "")
            for r in self.received
            if wanted is None or r.event.get("subject") == wanted
        ]


def signature_is_valid(received: Received, secret: str, *, tolerance_s: float = 300) -> bool:
    parts = dict(item.split("=", 1) for item in received.headers["x-governance-signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) <= tolerance_s


# --- events ----------------------------------------------------------------------------------------------------


def decision(
    customer_id: uuid.UUID, *, allowed: bool = True, risk: int = 10, pii: int = 0, at: datetime | None = None
) -> DecisionEvent:
    return DecisionEvent(
        event_id=uuid.uuid4(),
        request_id=f"req_{uuid.uuid4().hex[:12]}",
        customer_id=customer_id,
        key_id="keyid_test",
        decided_at=at or datetime.now(UTC),
        allowed=allowed,
        risk_score=risk,
        threshold=50,
        reason="Within policy limits" if allowed else "Blocked by policy",
        personal_data=[PersonalDataFinding(category="email", path=f"context.f{i}") for i in range(pii)],
        latency_ms=1.0,
        request_digest=request_digest({"test": True}, new_request_salt()),
    )


def signal(
    kind: str, count: int, *, customer_id: uuid.UUID | None = None, key_id: str | None = None, reason: str = ""
) -> SignalEvent:
    now = datetime.now(UTC)
    return SignalEvent(
        event_id=uuid.uuid4(),
        kind=kind,
        customer_id=customer_id,
        key_id=key_id,
        reason=reason,
        count=count,
        window_start=now,
        window_end=now,
    )


async def produce(settings: IngressSettings, events: Iterable[DecisionEvent | SignalEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for event in events:
            is_decision = isinstance(event, DecisionEvent)
            # Decisions signed as ingress signs them: the run's audit writers share this topic and store no other.
            sent = signed(event) if isinstance(event, DecisionEvent) else event
            key = str(event.customer_id or "unknown").encode()
            await producer.send_and_wait(
                settings.decisions_topic if is_decision else settings.signals_topic,
                sent.model_dump_json().encode(),
                key=key,
                headers=[(topics.HEADER_EVENT_TYPE, b"decision" if is_decision else b"signal")],
            )
    finally:
        await producer.stop()


async def alert_events_on_kafka(settings: IngressSettings, subject: str, *, want: int) -> list[dict[str, Any]]:
    """The AlertEvents for ``subject`` on the run's alerts topic, waiting (up to 15 s) until ``want`` are there."""
    consumer = AIOKafkaConsumer(
        settings.alerts_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 15
        while len(found) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    event = json.loads(record.value or b"{}")
                    if event.get("subject") == subject:
                        found.append(event | {"_headers": dict(record.headers), "_key": record.key})
    finally:
        await consumer.stop()
    return found


# --- setup -----------------------------------------------------------------------------------------------------


async def add_rule(pool: asyncpg.Pool, customer_id: uuid.UUID | None, rule: str, **params: Any) -> None:
    await alert_rules.create_rule(
        pool, AlertRuleCreate.model_validate({"customer_id": customer_id, "rule": rule, "params": params})
    )


async def add_webhook(pool: asyncpg.Pool, customer_id: uuid.UUID | None, url: str) -> WebhookCreated:
    return await webhooks.create_webhook(
        pool,
        WebhookCreate(customer_id=customer_id, url=url, description="test"),
        require_https=False,
        box=SecretBox.local(),  # what ENVIRONMENT=test uses without WEBHOOK_SECRETS_KEY
    )


def alerting_settings(settings: IngressSettings, group_id: str | None = None) -> AlertingSettings:
    return AlertingSettings.derive(
        settings,
        ALERTS_GROUP_ID=group_id or f"test-alerts-{uuid.uuid4().hex[:8]}",
        ALERTS_TICK_S=0.2,
        ALERTS_RULES_REFRESH_S=0.5,
        ALERTS_PUBLISH_INTERVAL_S=0.5,
        ALERTS_BATCH_SIZE=50,
    )


def webhook_settings(settings: IngressSettings, **overrides: Any) -> WebhookSettings:
    values: dict[str, Any] = {
        "WEBHOOK_POLL_INTERVAL_S": 0.1,
        "WEBHOOK_BACKOFF_INITIAL_S": 0.2,
        "WEBHOOK_BACKOFF_MAX_S": 0.5,
        "WEBHOOK_TIMEOUT_S": 2,
        "WEBHOOK_MAX_ATTEMPTS": 8,
    }
    return WebhookSettings.derive(settings, **(values | overrides))


@contextlib.asynccontextmanager
async def running_consumer(settings: AlertingSettings) -> AsyncIterator[AlertingConsumer]:
    consumer = AlertingConsumer(settings)
    await consumer.start()
    try:
        await wait_for(lambda: consumer.caught_up, timeout=20, what="the alerting consumer to join and catch up")
        yield consumer
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def running_worker(settings: WebhookSettings) -> AsyncIterator[WebhookDeliveryWorker]:
    worker = WebhookDeliveryWorker(settings)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 15, what: str = "the condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")
