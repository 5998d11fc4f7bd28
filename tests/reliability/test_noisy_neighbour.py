"""A noisy neighbour: one tenant sends worst-case inputs for the personal-data detector at its full rate limit,
while another tenant's checks and ``/health`` keep being answered, against one real ingress process.

The invariant is a deadline, not a speed: every one of the victim's checks is answered 200 within 2 s, and every
``/health`` within 2 s, for the whole attack (before the linear detector, one such request froze the process for
minutes). The victim's p99 with and without the attacker, side by side, is printed here and measured by
``make bench``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from bench.adversarial import worst_case_body
from ingress.settings import IngressSettings
from tests.conftest import LiveServer, insert_customer
from tests.support.reliability import CHECK, figures, ingress, isolated_env, steady_load

DEADLINE_S = 2.0
ATTACK_S = 12.0
VICTIM_RATE = 5.0
ATTACKER_RATE = 10.0  # its tier's whole limit: 600 checks a minute


def attack_body() -> dict[str, object]:
    return worst_case_body()


@pytest.fixture(scope="module")
def server(settings: IngressSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = isolated_env(RATE_LIMIT_FREE_CAPACITY="600", RATE_LIMIT_FREE_WINDOW_S="60")
    with ingress(settings, tmp_path_factory.mktemp("noisy-neighbour"), **env) as live:
        yield live


async def _health(url: str, stop: asyncio.Event) -> list[float]:
    """``/health`` twice a second until ``stop``: each answer's seconds (a timeout counts as the deadline)."""
    seconds: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=DEADLINE_S * 5) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                answer = await http.get("/health")
                seconds.append(time.perf_counter() - started if answer.status_code == 200 else float("inf"))
            except httpx.HTTPError:
                seconds.append(float("inf"))
            await asyncio.sleep(0.5)
    return seconds


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_worst_case_inputs_at_the_full_rate_limit_slow_no_one_else(
    server: LiveServer, pg_pool: asyncpg.Pool
) -> None:
    victim = await insert_customer(pg_pool, tier="pro")
    attacker = await insert_customer(pg_pool, tier="free")
    body = attack_body()
    assert len(httpx.Request("POST", "/", json=body).content) < 1024 * 1024

    # Warm both keys (the first check of a key verifies it), then the victim alone.
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for key in (victim.key, attacker.key):
            assert (
                await http.post("/v1/check", json=CHECK, headers={"Authorization": f"Bearer {key}"})
            ).status_code == 200
    alone = await steady_load(server.url, victim.key, rate=VICTIM_RATE, duration_s=ATTACK_S / 2)

    stop = asyncio.Event()
    health = asyncio.create_task(_health(server.url, stop))
    attack = asyncio.create_task(
        steady_load(
            server.url,
            attacker.key,
            rate=ATTACKER_RATE,
            duration_s=ATTACK_S,
            payload=body,
            timeout_s=60,
            max_in_flight=32,
        )
    )
    await asyncio.sleep(1.0)  # the attack under way
    during = await steady_load(server.url, victim.key, rate=VICTIM_RATE, duration_s=ATTACK_S - 2, timeout_s=30)
    attacked = await attack
    stop.set()
    health_s = await health

    figures(
        17,
        "noisy neighbour: victim checks while another tenant sends worst-case 1 MiB bodies at its full rate",
        victim_alone_p99_ms=round(alone.percentile(99), 1),
        victim_attacked_p99_ms=round(during.percentile(99), 1),
        victim_attacked_max_ms=round(max(during.latencies_ms, default=0.0), 1),
        attacker=attacked.answered(),
        health_max_s=round(max(health_s, default=0.0), 3),
    )
    # The attack really ran: its checks were answered (blocked or not), or refused by its limits, never 5xx.
    assert attacked.of(200) > 0
    assert attacked.server_errors() == 0
    # The invariant: every victim check answered 200 within the deadline, and /health throughout.
    assert during.statuses == {"200": during.sent}
    assert max(during.latencies_ms) <= DEADLINE_S * 1000
    assert health_s
    assert max(health_s) <= DEADLINE_S
