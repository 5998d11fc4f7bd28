"""The dashboard's client of the admin API (backend-for-frontend): every call carries the signed-in operator's
admin key, which never leaves this process except in the ``Authorization`` header to the API."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("ingress.dashboard")


class ApiFailure(Exception):
    """A call that did not succeed, with what the operator should read."""

    def __init__(self, message: str, *, status: int, code: str, request_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id


class ApiUnreachable(ApiFailure):
    """The API did not answer (refused connection, timeout)."""


class ApiRefusal(ApiFailure):
    """The API answered with an error: its code, message, request id and, for 422, the fields at fault."""

    def __init__(
        self, message: str, *, status: int, code: str, request_id: str = "", details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id)
        self.details = details or []

    @property
    def route_missing(self) -> bool:
        """The API has no such route (an older API), as opposed to a record that is not there."""
        return self.status in (404, 405) and self.message in ("Not Found", "Method Not Allowed")


def _refusal(response: httpx.Response) -> ApiRefusal:
    request_id = response.headers.get("x-request-id", "")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ApiRefusal(
            f"the API answered {response.status_code} without an error body",
            status=response.status_code,
            code="error",
            request_id=request_id,
        )
    details = body.get("details")
    return ApiRefusal(
        str(body.get("message") or body.get("error") or response.reason_phrase),
        status=response.status_code,
        code=str(body.get("error") or "error"),
        request_id=str(body.get("request_id") or request_id),
        details=[d for d in details if isinstance(d, dict)] if isinstance(details, list) else None,
    )


@dataclass
class AdminApiClient:
    """One HTTP connection pool to the API for the whole process."""

    base_url: str
    timeout_s: float
    transport: httpx.AsyncBaseTransport | None = None  # tests may put an API of their own here
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout_s, follow_redirects=False, transport=self.transport
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        admin_key: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """The decoded JSON answer (``None`` for 204); ``ApiRefusal`` for an error answer, ``ApiUnreachable``
        when there is no answer."""
        query = {
            k: v if isinstance(v, str | int | float) else str(v)
            for k, v in (params or {}).items()
            if v not in (None, "")
        }
        try:
            response = await self.http.request(
                method,
                path,
                params=query,
                json=body,
                headers={"Authorization": f"Bearer {admin_key}", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            log.warning("API call %s %s failed: %s", method, path, type(exc).__name__)
            raise ApiUnreachable(
                f"the API at {self.base_url} did not answer ({type(exc).__name__})", status=502, code="unreachable"
            ) from None
        if response.status_code >= 400:
            raise _refusal(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


@dataclass(frozen=True)
class OperatorApi:
    """The API as one signed-in operator calls it: the client bound to their admin key."""

    client: AdminApiClient
    admin_key: str = field(repr=False)

    async def get(self, path: str, **params: Any) -> Any:
        return await self.client.call(self.admin_key, "GET", path, params=params)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.client.call(self.admin_key, "POST", path, body=body)

    async def put(self, path: str, body: Any) -> Any:
        return await self.client.call(self.admin_key, "PUT", path, body=body)

    async def delete(self, path: str) -> Any:
        return await self.client.call(self.admin_key, "DELETE", path)


def items_of(body: Any) -> list[dict[str, Any]]:
    """The rows of a list answer, whether a bare list or a page (``{"items": [...]}``)."""
    rows = body.get("items", []) if isinstance(body, dict) else body
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


@dataclass(frozen=True)
class Outcome:
    """A call whose failure one part of a page shows in place, rather than failing the whole page."""

    value: Any = None
    failure: ApiFailure | None = None

    @property
    def unavailable(self) -> bool:
        """The API has no such route yet (a feature not deployed)."""
        return isinstance(self.failure, ApiRefusal) and self.failure.route_missing


async def attempt(call: Awaitable[Any]) -> Outcome:
    """``Outcome`` of ``call``; a 401 still propagates, since it means the whole session is no longer valid."""
    try:
        return Outcome(value=await call)
    except ApiRefusal as exc:
        if exc.status == 401:
            raise
        return Outcome(failure=exc)
    except ApiFailure as exc:
        return Outcome(failure=exc)


async def submit(call: Awaitable[Any]) -> tuple[Any, ApiRefusal | None]:
    """A write from a form: the API's answer, or its refusal to show beside the form (a 401 still propagates)."""
    try:
        return await call, None
    except ApiRefusal as exc:
        if exc.status == 401:
            raise
        return None, exc
