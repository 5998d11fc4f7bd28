"""Large checks are analysed in the scan lane's worker process, with the same findings as inline; the lane's
queue is bounded."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from ingress.check.scan_lane import INLINE_BYTES, INLINE_BYTES_UNICODE, LaneFull, ScanLane, inline
from ingress.engine import analyze_request
from schemas.check import CheckRequest
from tests.conftest import LiveServer, SeededCustomer

LARGE = {
    "operations": [
        {"type": "llm_call", "model": "gpt-4", "prompt": "summarise this " * 2000 + "mail jane@example.com"}
    ],
    "context": {"user_id": "user_123", "notes": ["ok"] * 10 + ["ssn 123-45-6789"]},
}


def test_small_bodies_stay_inline_and_large_ones_do_not() -> None:
    assert inline(b"x" * INLINE_BYTES)
    assert not inline(b"x" * (INLINE_BYTES + 1))
    assert inline("é".encode() * (INLINE_BYTES_UNICODE // 2))
    assert not inline("é".encode() * INLINE_BYTES_UNICODE)


async def test_the_worker_finds_what_inline_analysis_finds() -> None:
    raw = orjson.dumps(LARGE)
    assert not inline(raw)
    body = CheckRequest.model_validate(LARGE)
    lane = ScanLane()
    try:
        assert await lane.analyze(raw, body) == analyze_request(body)
    finally:
        lane.close()


async def test_a_full_lane_refuses_instead_of_queueing_without_bound() -> None:
    lane = ScanLane(max_waiting=1)
    raw = orjson.dumps(LARGE)
    body = CheckRequest.model_validate(LARGE)
    try:
        first = asyncio.create_task(lane.analyze(raw, body))
        await asyncio.sleep(0)  # the first one waits in the lane
        with pytest.raises(LaneFull):
            await lane.analyze(raw, body)
        await first
    finally:
        lane.close()


async def test_a_large_check_is_answered_with_its_findings(live_server: LiveServer, customer: SeededCustomer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=60) as http:
        answer = await http.post("/v1/check", json=LARGE, headers={"Authorization": f"Bearer {customer.key}"})
    assert answer.status_code == 200, answer.text
    factors = {factor["name"]: factor for factor in answer.json()["factors"]}
    assert set(factors["personal_data"]["paths"]) == {"operations[0].prompt", "context.notes[10]"}
