"""``POST /v1/check``: authenticate, rate-limit, decide, publish, answer.

The route only adapts: the decision is the pure engine's (``ingress.engine.decide``), the answer is sent only
after the decision event is acknowledged by Kafka or durably spooled (``ingress.check.publisher``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from ingress.auth.deps import CustomerDep
from ingress.check.budgets import BudgetCounter
from ingress.check.config_cache import ConfigUnavailable, CustomerConfig, CustomerConfigCache, CustomerGone
from ingress.check.publisher import DecisionPublisher, PublishUnavailable
from ingress.check.ratelimit import RateDecision, RateLimiter
from ingress.check.receipts import ReceiptSigner, format_instant
from ingress.check.scan_lane import LaneFull, ScanLane
from ingress.check.signals import SignalRecorder
from ingress.engine import Decision, budget_demands, decide_from_features
from ingress.http import metrics
from ingress.http.errors import ApiError, validation_error
from ingress.http.request_context import current_request_id
from ingress.http.responses import JsonResponse
from schemas.check import CheckRequest, CheckResponse
from schemas.decision_event import BudgetUsage, DecisionEvent
from schemas.receipt import IssuedReceipt, ReceiptBody, b64url, new_request_salt, request_digest

router = APIRouter(tags=["check"])


class CheckAnswer(CheckResponse):
    """The answer as sent: ``CheckResponse`` and the decision's signed receipt (docs/receipts.md)."""

    receipt: IssuedReceipt | None = None


@dataclass
class CheckServices:
    """What the check path needs, built once per process in the app's lifespan."""

    config: CustomerConfigCache
    limiter: RateLimiter
    publisher: DecisionPublisher
    signals: SignalRecorder
    receipts: ReceiptSigner
    budgets: BudgetCounter
    scan: ScanLane


def request_schemas() -> dict[str, Any]:
    """``CheckRequest`` and every model it names, for the OpenAPI components: the route reads its body itself (one
    bounded parse), so FastAPI would not list the schema its ``requestBody`` refers to."""
    schema = CheckRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, "CheckRequest": schema}


async def _services(request: Request) -> CheckServices:  # async: a plain def would hop to the thread pool
    services: CheckServices = request.app.state.check
    return services


ServicesDep = Annotated[CheckServices, Depends(_services)]


async def _customer_config(services: CheckServices, customer_id: uuid.UUID) -> CustomerConfig:
    try:
        return await services.config.get(customer_id)
    except CustomerGone:
        # The key verified from a cache that has not heard of the deletion yet: refused all the same.
        raise ApiError(
            401,
            "unauthorized",
            "this API key has been revoked",
            headers={"WWW-Authenticate": "Bearer"},
            details={"reason": "revoked"},
        ) from None
    except ConfigUnavailable:
        raise ApiError(
            503, "unavailable", "configuration store unavailable; retry shortly", headers={"Retry-After": "2"}
        ) from None


async def _parse(request: Request, rate: RateDecision) -> tuple[bytes, Any, CheckRequest]:
    raw = await request.body()
    try:
        payload: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(
            422,
            "validation_error",
            "request body is not valid JSON",
            headers=rate.headers(),
            details=[{"field": "body", "message": "invalid JSON"}],
        ) from None
    try:
        return raw, payload, CheckRequest.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc.errors(include_url=False, include_input=False), rate.headers()) from None


def build_event(
    *,
    request_id: str,
    customer_id: uuid.UUID,
    key_id: str,
    decision: Decision,
    decided_at: datetime,
    latency_ms: float,
    payload: Any,
    signer: ReceiptSigner,
    salt: bytes | None = None,
) -> DecisionEvent:
    """The decision event and its signed receipt. ``salt`` keys the request digest (``request_salt``, given to the
    caller alone: docs/receipts.md); the event carries the digest, never the salt."""
    event_id = uuid.uuid4()
    digest = request_digest(payload, salt if salt is not None else new_request_salt())
    receipt = signer.sign(
        ReceiptBody(
            event_id=str(event_id),
            request_id=request_id,
            customer_id=str(customer_id),
            key_id=key_id,
            decided_at=format_instant(decided_at),
            allowed=decision.allowed,
            risk_score=decision.risk_score,
            reason=decision.reason,
            policy_versions=sorted(f"{p.policy_id}:{p.version}" for p in decision.policies),
            request_digest=digest,
        )
    )
    return DecisionEvent(
        event_id=event_id,
        request_id=request_id,
        customer_id=customer_id,
        key_id=key_id,
        decided_at=decided_at,
        allowed=decision.allowed,
        risk_score=decision.risk_score,
        threshold=decision.threshold,
        reason=decision.reason,
        factors=list(decision.factors),
        violations=list(decision.violations),
        policies=list(decision.policies),
        operations=list(decision.operations),
        personal_data=list(decision.personal_data),
        shadow=list(decision.shadow),
        budgets=list(decision.budgets),
        latency_ms=latency_ms,
        request_digest=digest,
        receipt=receipt,
    )


@router.post(
    "/v1/check",
    response_model=CheckAnswer,
    responses={
        401: {"description": "missing, malformed, unknown, revoked or expired API key"},
        413: {"description": "body over the size limit"},
        422: {"description": "invalid request, or a limit (operations, nesting, string length) exceeded"},
        429: {"description": "rate limit exceeded; see Retry-After"},
        503: {"description": "the decision could not be recorded; nothing was decided"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CheckRequest"}}},
        }
    },
)
async def check(request: Request, principal: CustomerDep, services: ServicesDep) -> JsonResponse:
    started = time.perf_counter()
    assert principal.customer_id is not None  # noqa: S101 - a live key always belongs to a customer
    config = await _customer_config(services, principal.customer_id)
    request.state.metrics_customer = (config.name, principal.key_id)  # per-customer and per-key counts
    rate = await services.limiter.take(principal.key_id, config.limit)
    metrics.RATE_FALLBACK.set(1 if services.limiter.fallback_active else 0)
    if not rate.allowed:
        metrics.RATE_LIMITED.labels(config.name, principal.key_id).inc()
        services.signals.record("rate_limited", customer_id=str(principal.customer_id), key_id=principal.key_id)
        request.state.rate_limited = True
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {rate.limit} requests per {config.limit.window_s} s exceeded; "
            f"retry after {rate.retry_after_s} s",
            headers=rate.headers(),
        )
    raw, payload, body = await _parse(request, rate)
    try:
        operations, personal_data = await services.scan.analyze(raw, body)
    except LaneFull:
        raise ApiError(
            429,
            "rate_limited",
            "too many large checks are being scanned; retry after 1 s",
            headers={**rate.headers(), "Retry-After": "1"},
        ) from None
    budgets: list[BudgetUsage] = []
    reserved: list[tuple[str, int]] = []
    if config.has_budgets:
        demands = budget_demands(operations, personal_data, config.policies)
        if demands:
            budgets, reserved = await services.budgets.reserve(demands, body.context)
    decision = decide_from_features(operations, personal_data, config.policies, budgets)
    if reserved and not decision.allowed:
        await services.budgets.refund(reserved)  # a blocked check runs nothing, so it uses no budget
    request_id = current_request_id()
    salt = new_request_salt()
    event = build_event(
        request_id=request_id,
        customer_id=principal.customer_id,
        key_id=principal.key_id,
        decision=decision,
        decided_at=datetime.now(UTC),
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        payload=payload,
        signer=services.receipts,
        salt=salt,
    )
    publish_started = time.perf_counter()
    try:
        outcome = await services.publisher.publish(
            str(principal.customer_id).encode(), event.model_dump_json().encode(), DecisionPublisher.headers()
        )
    except PublishUnavailable:
        metrics.PUBLISH_OUTCOMES.labels("failed").inc()
        raise ApiError(
            503,
            "unavailable",
            "the decision could not be recorded; nothing was decided, retry shortly",
            headers={**rate.headers(), "Retry-After": "5"},
        ) from None
    metrics.PUBLISH_OUTCOMES.labels(outcome).inc()
    if outcome == "kafka":
        metrics.PUBLISH_LATENCY.observe((time.perf_counter() - publish_started) * 1000)
    metrics.CHECKS.labels(config.name).inc()
    (metrics.ALLOWED if decision.allowed else metrics.BLOCKED).labels(config.name).inc()
    metrics.RISK.labels(config.name).observe(decision.risk_score)
    request.state.decision = decision
    content = {
        "allowed": decision.allowed,
        "risk_score": decision.risk_score,
        "reason": decision.reason,
        "request_id": request_id,
        "event_id": str(event.event_id),
        "factors": [f.model_dump() for f in decision.factors],
        "violations": [v.model_dump() for v in decision.violations],
        "receipt": {**event.receipt.model_dump(), "request_salt": b64url(salt)} if event.receipt else None,
    }
    return JsonResponse(content, headers=rate.headers())
