"""``Client`` and ``AsyncClient``: one call per check, with retries, a deadline, an outage policy and receipts.

Both keep one HTTP connection pool for their lifetime (close them, or use them as context managers). The API key
goes into the pool's default headers and nowhere else: not into a log line, a repr or an exception message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from governance_client import operations as ops
from governance_client.errors import GovernanceError, GovernanceUnavailable, ReceiptInvalid
from governance_client.protocol import (
    CHECK_PATH,
    FAIL_CLOSED,
    KEYS_PATH,
    FailClosed,
    OutagePolicy,
    RetryPolicy,
    check_body,
    deadline_exceeded,
    read_answer,
    transport_failure,
)
from governance_client.receipts import KeyCache, parse_keys, receipt_of, verify_receipt
from governance_client.results import CheckResult

log = logging.getLogger("governance_client")

DEFAULT_BASE_URL = "http://localhost:8000"
USER_AGENT = "governance-client-python/0.1.0"


class _ClientBase:
    """What both clients share: settings, the request body, and the bookkeeping of one call's attempts."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float,
        deadline: float,
        retry: RetryPolicy | None,
        outage: OutagePolicy | None,
        context: Mapping[str, Any] | None,
        verify_receipts: bool,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("GOVERNANCE_API_KEY", "")
        if not key:
            raise ValueError("api_key is required (or set GOVERNANCE_API_KEY)")
        if timeout <= 0 or deadline <= 0:
            raise ValueError("timeout and deadline must be positive")
        self.base_url = (base_url or os.environ.get("GOVERNANCE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._secret = key
        self.timeout = timeout
        self.deadline = deadline
        self.retry = retry or RetryPolicy()
        self.outage: OutagePolicy = outage or FAIL_CLOSED
        self.context: dict[str, Any] = dict(context or {})
        self.verify_receipts = verify_receipts
        self._keys = KeyCache()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<hidden>, outage={self.outage!r})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._secret}", "User-Agent": USER_AGENT}

    def _body(self, operations: Iterable[Mapping[str, Any]], context: Mapping[str, Any] | None) -> dict[str, Any]:
        return check_body(
            (ops.plain_json(op) for op in operations), ops.plain_json({**self.context, **(context or {})})
        )

    def _after_failure(self, error: GovernanceError, attempt: int, ends_at: float) -> float | None:
        delay = self.retry.delay(error, attempt, ends_at - time.monotonic())
        if delay is not None:
            log.info(
                "governance check attempt %d failed (%s%s); retrying in %.2f s",
                attempt,
                f"HTTP {error.status}" if error.status else error.message,
                f", request_id {error.request_id}" if error.request_id else "",
                delay,
            )
        return delay

    def _attempt_timeout(self, ends_at: float) -> float:
        return max(0.001, min(self.timeout, ends_at - time.monotonic()))

    def _verified(self, result: CheckResult, body: dict[str, Any], keys: dict[str, bytes]) -> CheckResult:
        if not verify_receipt(result.receipt, keys, body):
            raise ReceiptInvalid("the decision's receipt did not verify", request_id=result.request_id)
        return result

    def _receipt_key_id(self, value: Any) -> str | None:
        receipt = receipt_of(value)
        key_id = receipt.get("key_id") if isinstance(receipt, dict) else None
        return key_id if isinstance(key_id, str) else None


class Client(_ClientBase):
    """A synchronous client of ``POST /v1/check``.

    ``timeout`` bounds each attempt, ``deadline`` the whole call with its retries (both in seconds; each call
    may pass its own ``deadline``). ``outage`` is :data:`FAIL_CLOSED` (the default) or :class:`FailOpen`.
    ``context`` is merged under each call's context (``user_id``, ``department``, ...). With
    ``verify_receipts`` every decision's receipt is checked against the published keys before it is returned.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 3.0,
        deadline: float = 10.0,
        retry: RetryPolicy | None = None,
        outage: OutagePolicy | None = None,
        context: Mapping[str, Any] | None = None,
        verify_receipts: bool = False,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            deadline=deadline,
            retry=retry,
            outage=outage,
            context=context,
            verify_receipts=verify_receipts,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def check(
        self,
        operations: Iterable[Mapping[str, Any]],
        context: Mapping[str, Any] | None = None,
        *,
        deadline: float | None = None,
        outage: OutagePolicy | None = None,
    ) -> CheckResult:
        """Ask whether ``operations`` may run. Returns the decision, allowed or not (see
        :meth:`CheckResult.raise_if_blocked`); raises what errors.py describes."""
        body = self._body(operations, context)
        policy = outage or self.outage
        try:
            result = self._decide(body, deadline or self.deadline)
        except GovernanceUnavailable as error:
            if isinstance(policy, FailClosed):
                raise
            log.error("governance check failed open: %s", error)
            policy.on_outage(error)
            return CheckResult.failed_open(error)
        if self.verify_receipts:
            return self._verified(result, body, self._fetch_keys_for(result.receipt))
        return result

    def check_llm_call(
        self,
        model: str,
        messages: Any = None,
        *,
        provider: str | None = None,
        max_tokens: int | None = None,
        prompt: str | None = None,
        context: Mapping[str, Any] | None = None,
        deadline: float | None = None,
        outage: OutagePolicy | None = None,
    ) -> CheckResult:
        """Check one model call: the model, its provider, the tokens it may use and its messages."""
        operation = ops.llm_call(model, messages, provider=provider, max_tokens=max_tokens, prompt=prompt)
        return self.check([operation], context, deadline=deadline, outage=outage)

    def receipt_keys(self, *, refresh: bool = False) -> dict[str, bytes]:
        """The service's published receipt keys (key id to raw Ed25519 public key), cached."""
        if refresh or self._keys.needs_fetch(None):
            self._store_keys()
        return dict(self._keys.keys)

    def verify_receipt(self, receipt: Any, request_body: Any = None) -> bool:
        """Verify a receipt (or a result or response body carrying one) offline, against the cached keys."""
        return verify_receipt(receipt_of(receipt), self._fetch_keys_for(receipt), request_body)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _decide(self, body: dict[str, Any], deadline: float) -> CheckResult:
        ends_at = time.monotonic() + deadline
        attempt = 0
        while True:
            attempt += 1
            if time.monotonic() >= ends_at:
                raise deadline_exceeded(deadline)
            try:
                response = self._http.post(
                    f"{self.base_url}{CHECK_PATH}",
                    json=body,
                    headers=self._headers(),
                    timeout=self._attempt_timeout(ends_at),
                )
                return read_answer(response, self._secret)
            except httpx.TransportError as exc:
                error: GovernanceError = transport_failure(exc)
            except GovernanceError as exc:
                error = exc
            delay = self._after_failure(error, attempt, ends_at)
            if delay is None:
                raise error
            time.sleep(delay)

    def _fetch_keys_for(self, value: Any) -> dict[str, bytes]:
        if self._keys.needs_fetch(self._receipt_key_id(value)):
            self._store_keys()
        return self._keys.keys

    def _store_keys(self) -> None:
        try:
            response = self._http.get(f"{self.base_url}{KEYS_PATH}", timeout=self.timeout)
            response.raise_for_status()
            self._keys.store(parse_keys(response.json()))
        except (httpx.HTTPError, ValueError) as exc:
            raise GovernanceUnavailable(f"receipt keys could not be fetched ({type(exc).__name__})") from None


class AsyncClient(_ClientBase):
    """The asynchronous twin of :class:`Client`, with the same arguments and methods (awaited). An outage
    callback may be a plain or an async function."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 3.0,
        deadline: float = 10.0,
        retry: RetryPolicy | None = None,
        outage: OutagePolicy | None = None,
        context: Mapping[str, Any] | None = None,
        verify_receipts: bool = False,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            deadline=deadline,
            retry=retry,
            outage=outage,
            context=context,
            verify_receipts=verify_receipts,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def check(
        self,
        operations: Iterable[Mapping[str, Any]],
        context: Mapping[str, Any] | None = None,
        *,
        deadline: float | None = None,
        outage: OutagePolicy | None = None,
    ) -> CheckResult:
        body = self._body(operations, context)
        policy = outage or self.outage
        try:
            result = await self._decide(body, deadline or self.deadline)
        except GovernanceUnavailable as error:
            if isinstance(policy, FailClosed):
                raise
            log.error("governance check failed open: %s", error)
            outcome = policy.on_outage(error)
            if inspect.isawaitable(outcome):
                await outcome
            return CheckResult.failed_open(error)
        if self.verify_receipts:
            return self._verified(result, body, await self._fetch_keys_for(result.receipt))
        return result

    async def check_llm_call(
        self,
        model: str,
        messages: Any = None,
        *,
        provider: str | None = None,
        max_tokens: int | None = None,
        prompt: str | None = None,
        context: Mapping[str, Any] | None = None,
        deadline: float | None = None,
        outage: OutagePolicy | None = None,
    ) -> CheckResult:
        operation = ops.llm_call(model, messages, provider=provider, max_tokens=max_tokens, prompt=prompt)
        return await self.check([operation], context, deadline=deadline, outage=outage)

    async def receipt_keys(self, *, refresh: bool = False) -> dict[str, bytes]:
        if refresh or self._keys.needs_fetch(None):
            await self._store_keys()
        return dict(self._keys.keys)

    async def verify_receipt(self, receipt: Any, request_body: Any = None) -> bool:
        return verify_receipt(receipt_of(receipt), await self._fetch_keys_for(receipt), request_body)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _decide(self, body: dict[str, Any], deadline: float) -> CheckResult:
        ends_at = time.monotonic() + deadline
        attempt = 0
        while True:
            attempt += 1
            if time.monotonic() >= ends_at:
                raise deadline_exceeded(deadline)
            try:
                response = await self._http.post(
                    f"{self.base_url}{CHECK_PATH}",
                    json=body,
                    headers=self._headers(),
                    timeout=self._attempt_timeout(ends_at),
                )
                return read_answer(response, self._secret)
            except httpx.TransportError as exc:
                error: GovernanceError = transport_failure(exc)
            except GovernanceError as exc:
                error = exc
            delay = self._after_failure(error, attempt, ends_at)
            if delay is None:
                raise error
            await asyncio.sleep(delay)

    async def _fetch_keys_for(self, value: Any) -> dict[str, bytes]:
        if self._keys.needs_fetch(self._receipt_key_id(value)):
            await self._store_keys()
        return self._keys.keys

    async def _store_keys(self) -> None:
        try:
            response = await self._http.get(f"{self.base_url}{KEYS_PATH}", timeout=self.timeout)
            response.raise_for_status()
            self._keys.store(parse_keys(response.json()))
        except (httpx.HTTPError, ValueError) as exc:
            raise GovernanceUnavailable(f"receipt keys could not be fetched ({type(exc).__name__})") from None
