"""The forwarder sends the read side the request target the caller sent, whatever bytes it holds.

The read side here is a small ASGI app that answers with the path it was asked for; the forwarder talks to it
through httpx's ASGI transport, as it talks to ``python -m ingress.audit`` over loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from ingress.http.forward import ReadSideForwarder, forwarding_router, request_target


def test_a_target_keeps_its_escapes_and_escapes_what_no_url_may_hold() -> None:
    assert request_target(b"/admin/policies/%15/backtest", b"") == "/admin/policies/%15/backtest"
    assert request_target(b"/admin/policies/a%2Fb/backtest", b"") == "/admin/policies/a%2Fb/backtest"
    assert request_target(b"/logs", b"q=\x01\xff&to=2026") == "/logs?q=%01%FF&to=2026"
    assert request_target(b"/logs", b"") == "/logs"


async def _read_side(request: Request) -> JSONResponse:
    note = dict(request.scope["headers"]).get(b"x-note", b"")
    return JSONResponse(
        {"raw_path": request.scope["raw_path"].decode(), "query": request.url.query, "note": note.hex()}
    )


@pytest.fixture
async def front() -> AsyncIterator[httpx.AsyncClient]:
    read_side = FastAPI()
    read_side.add_api_route("/{rest:path}", _read_side, methods=["GET", "POST"])
    app = FastAPI()
    app.include_router(forwarding_router())
    app.state.forwarder = ReadSideForwarder(
        "http://read-side", timeout_s=5.0, transport=httpx.ASGITransport(app=read_side)
    )

    @app.middleware("http")
    async def request_id(request: Request, call_next):  # type: ignore[no-untyped-def]
        request.state.request_id = "req_test"
        return await call_next(request)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingress") as client:
        yield client
    await app.state.forwarder.close()


async def test_an_escaped_control_character_in_the_path_reaches_the_read_side_escaped(
    front: httpx.AsyncClient,
) -> None:
    answer = await front.post("/admin/policies/r%C3%AA%157%C3%94%3D/backtest", json={})
    assert answer.status_code == 200
    assert answer.json()["raw_path"] == "/admin/policies/r%C3%AA%157%C3%94%3D/backtest"


async def test_the_query_goes_on_as_sent(front: httpx.AsyncClient) -> None:
    answer = await front.get("/logs?format=%15x&q=%00&to=2026-01-01T00%3A00%3A00Z")
    assert answer.status_code == 200
    assert answer.json()["query"] == "format=%15x&q=%00&to=2026-01-01T00%3A00%3A00Z"


async def test_a_header_beyond_ascii_goes_on_as_its_bytes(front: httpx.AsyncClient) -> None:
    answer = await front.get("/logs", headers={b"X-Note": b"caf\xe9"})
    assert answer.status_code == 200
    assert answer.json()["note"] == b"caf\xe9".hex()
