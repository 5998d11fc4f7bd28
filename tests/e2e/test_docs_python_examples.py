"""Every Python block in README.md and docs/ runs against a real ingress process: the FastStream subscriber prints
a decision, the webhook and receipt verifiers accept what the service signs and refuse anything altered, and a
fragment runs with the check response it expects."""

from __future__ import annotations

import asyncio
import builtins
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.support.docs_examples import CHECK_BODY, Example, Fixtures, examples_of, fill_in, skip_reason


def _check(fixtures: Fixtures) -> httpx.Response:
    response = httpx.post(
        f"{fixtures.url}/v1/check",
        json=CHECK_BODY,
        headers={"Authorization": f"Bearer {fixtures.customer.key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def _run_python(code: str, example: Example, namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(code, example.document, "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


async def _python_faststream_subscriber(example: Example, fixtures: Fixtures, live_server: LiveServer) -> None:
    """The topics guide's FastStream subscriber prints a decision made after it subscribed."""
    env = live_server.env
    code = (
        example.text.replace("127.0.0.1:9092", env["KAFKA_BOOTSTRAP_SERVERS"])
        .replace('"governance.decisions.v1"', repr(env["DECISIONS_TOPIC"]))
        .replace('"my-service"', repr(f"docs-example-{uuid.uuid4().hex[:8]}"))
    )
    printed: list[str] = []

    def capture(*values: object, **_: object) -> None:
        printed.append(" ".join(str(v) for v in values))

    namespace = _run_python(code, example, {"__name__": "docs_example", "print": capture})
    broker = namespace["broker"]
    async with broker:
        await broker.start()
        deadline = time.monotonic() + 60
        while not any(str(fixtures.customer.id) in line for line in printed):
            assert time.monotonic() < deadline, "the subscriber printed no decision"
            await asyncio.to_thread(_check, fixtures)  # auto_offset_reset=latest: keep deciding until assigned
            await asyncio.sleep(1)
    assert any(" allow " in f" {line} " or " block " in f" {line} " for line in printed), printed


@pytest.mark.parametrize("example", list(examples_of("python")))
async def test_python_example_runs(example: Example, fixtures: Fixtures, live_server: LiveServer) -> None:
    if reason := skip_reason(example):
        pytest.skip(reason)
    code = fill_in(example.text, fixtures)
    if "from faststream import FastStream" in code:
        await _python_faststream_subscriber(example, fixtures, live_server)
        return
    if "def verify_signature" in code:
        from workers.webhooks.signing import sign

        verify = _run_python(code, example, {"__name__": "docs_example"})["verify_signature"]
        body = b'{"event_type": "alert"}'
        assert verify("whsec_docs", sign("whsec_docs", int(time.time()), body), body)
        assert not verify("whsec_docs", sign("whsec_docs", int(time.time()), body), body + b" ")
        return
    if "def verify(receipt" in code:
        verify = _run_python(code, example, {"__name__": "docs_example"})["verify"]
        answer = (await asyncio.to_thread(_check, fixtures)).json()
        async with httpx.AsyncClient(base_url=fixtures.url, timeout=10) as http:
            keys = (await http.get("/v1/receipts/keys")).json()["keys"]
        assert verify(answer["receipt"], keys)
        assert verify(answer["receipt"], keys, CHECK_BODY)
        assert not verify(answer["receipt"], keys, {**CHECK_BODY, "context": {}})
        return
    # A fragment: it runs with what its text expects to exist (a check's response, the time module).
    response = await asyncio.to_thread(_check, fixtures)
    _run_python(code, example, {"__name__": "docs_example", "response": response, "time": time, **vars(builtins)})
