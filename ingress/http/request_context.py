"""Request ids: every request gets one, every response and log line carries it.

A plain ASGI middleware (not BaseHTTPMiddleware) so the check path pays one dict write, not a task hop.
"""

from __future__ import annotations

import logging
import re
import secrets

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.logs import customer_id_var, request_id_var

log = logging.getLogger("ingress")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def current_request_id() -> str:
    return request_id_var.get()


_FORWARDED_ID = re.compile(rb"req_[0-9a-f]{24}")


def _forwarded_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _FORWARDED_ID.fullmatch(value):
            return bytes(value).decode()
    return None


class RequestIdMiddleware:
    """``adopt_forwarded``: take a well-formed ``X-Request-ID`` from the request (the read side, which only ingress
    reaches, keeps the id ingress gave the caller); otherwise every request gets a new one."""

    def __init__(self, app: ASGIApp, *, adopt_forwarded: bool = False) -> None:
        self.app = app
        self.adopt_forwarded = adopt_forwarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (self.adopt_forwarded and _forwarded_id(scope)) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        customer_token = customer_id_var.set("")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send_with_id(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            log.debug("client went away before the answer", extra={"request_id": request_id})
        except Exception:
            # Last line of defence: a bug still answers JSON with the request id, and is logged with it.
            log.exception("unhandled error", extra={"request_id": request_id})
            if started:
                raise
            body = orjson.dumps(
                {
                    "error": "internal_error",
                    "message": "internal error; contact support with the request_id",
                    "request_id": request_id,
                }
            )
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            request_id_var.reset(token)
            customer_id_var.reset(customer_token)
