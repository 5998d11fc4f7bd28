"""FastAPI dependencies: ``CustomerDep`` for customer endpoints, ``AdminDep`` for operator endpoints.

The tenant always comes from the authenticated key, never from the request body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security

from infra.logs import customer_id_var
from ingress.auth.keys import PREFIXES, MalformedKey, parse_key
from ingress.auth.lane import VerificationBusy
from ingress.auth.records import AuthFailure, AuthUnavailable, Principal
from ingress.http.errors import ApiError
from ingress.http.metrics import AUTH_FAILURES
from ingress.http.openapi_security import ADMIN_KEY, CUSTOMER_KEY


def _record_failure(request: Request, exc: AuthFailure) -> None:
    signals = getattr(request.app.state, "signals", None)
    if signals is None:
        return
    # A signal names a key only when it is a real one (a wrong secret for it, or a revoked key): forged key ids
    # fall into one group per reason, so a flood of them is one message per flush, not one per try.
    customer_id = str(exc.customer_id) if exc.customer_id is not None else None
    signals.record("auth_failure", customer_id=customer_id, key_id=exc.key_id, reason=exc.reason)


def _unauthorized(exc: AuthFailure) -> ApiError:
    return ApiError(
        401, "unauthorized", exc.message, headers={"WWW-Authenticate": "Bearer"}, details={"reason": exc.reason}
    )


def _unavailable() -> ApiError:
    return ApiError(503, "unavailable", "key store unavailable; retry shortly", headers={"Retry-After": "2"})


def _busy() -> ApiError:
    return ApiError(
        503, "unavailable", "too many tries to verify this key at once; retry shortly", headers={"Retry-After": "1"}
    )


async def require_customer(request: Request, _scheme: Annotated[None, Security(CUSTOMER_KEY)]) -> Principal:
    auth = request.app.state.auth
    try:
        principal: Principal = await auth.customers.verify(request.headers.get("authorization"), "live")
    except AuthFailure as exc:
        request.state.auth_failure = exc.reason
        AUTH_FAILURES.labels(exc.reason).inc()
        _record_failure(request, exc)
        raise _unauthorized(exc) from None
    except AuthUnavailable:
        raise _unavailable() from None
    except VerificationBusy:
        raise _busy() from None
    request.state.principal = principal
    customer_id_var.set(str(principal.customer_id))
    return principal


async def require_admin(request: Request, _scheme: Annotated[None, Security(ADMIN_KEY)]) -> Principal:
    header = request.headers.get("authorization") or ""
    _, _, presented = header.partition(" ")
    presented = presented.strip()
    if presented.startswith(PREFIXES["live"]):
        try:
            parse_key(presented)
        except MalformedKey:
            pass
        else:
            raise ApiError(403, "forbidden", "this endpoint needs an admin key (sk_admin_...)")
    auth = request.app.state.auth
    try:
        principal: Principal = await auth.admins.verify(header or None, "admin")
    except AuthFailure as exc:
        AUTH_FAILURES.labels(exc.reason).inc()
        raise _unauthorized(exc) from None
    except AuthUnavailable:
        raise _unavailable() from None
    except VerificationBusy:
        raise _busy() from None
    request.state.principal = principal
    return principal


CustomerDep = Annotated[Principal, Depends(require_customer)]
AdminDep = Annotated[Principal, Depends(require_admin)]
