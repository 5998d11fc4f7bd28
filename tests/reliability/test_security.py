"""Tenants never see each other, callers set only what they may, and hostile traffic does not starve the rest:
scenarios 10, 11, 12, 14 and 16 of docs/reliability.md, against one real ingress process of this module's own.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi.routing import iter_route_contexts

from ingress.app import create_app
from ingress.audit.app import create_app as create_audit_app
from ingress.auth.keys import generate_key
from ingress.http.forward import READ_SIDE_PATHS
from ingress.settings import IngressSettings
from tests.conftest import LiveServer, SeededCustomer, insert_admin_key, insert_customer
from tests.ingress.check.test_check import add_policy
from tests.support.reliability import (
    CHECK,
    bearer,
    cpu_seconds,
    figures,
    ingress,
    isolated_env,
    metric,
    rss_kib,
    settle,
    steady_load,
)


@dataclass
class Tenants:
    admin_key: str
    a: SeededCustomer
    b: SeededCustomer
    a_policy: str
    a_request_ids: list[str]
    a_event_ids: list[str]


@pytest.fixture(scope="module")
def server(settings: IngressSettings, migrated: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with ingress(settings, tmp_path_factory.mktemp("security"), **isolated_env()) as live:
        yield live


@pytest.fixture
async def tenants(server: LiveServer, pg_pool: asyncpg.Pool) -> Tenants:
    """Two customers; A has a policy and stored decisions, B holds a key and tries to reach them."""
    admin_key = await insert_admin_key(pg_pool)
    a, b = await insert_customer(pg_pool, tier="pro"), await insert_customer(pg_pool, tier="pro")
    a_policy = await add_policy(pg_pool, a.id, {"max_tokens": 10000}, "A's policy")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        answers = [(await http.post("/v1/check", json=CHECK, headers=bearer(a.key))).json() for _ in range(3)]
    count = await settle(server.url, admin_key, a.id, [x["event_id"] for x in answers], timeout=30, quiet_s=0)
    assert count.lost == 0
    return Tenants(admin_key, a, b, a_policy, [x["request_id"] for x in answers], [x["event_id"] for x in answers])


def _routes(settings: IngressSettings) -> list[tuple[str, str]]:
    """(method, path template) of every route :8000 answers, from the apps' routes (included routers flattened):
    the check path's own and the read side's it forwards (not the forwarding routes' catch-all templates)."""
    forwarded = {(method, path) for path, methods in READ_SIDE_PATHS for method in methods}
    found = []
    for app, skip in ((create_app(settings), forwarded), (create_audit_app(settings), set())):
        for context in iter_route_contexts(app.routes):
            methods = getattr(context.original_route, "methods", None) or set()
            for method in sorted(methods - {"HEAD"}):
                if (method, str(context.path)) not in skip:
                    found.append((method, str(context.path)))
    return sorted(set(found))


ADMIN_PREFIXES = ("/admin", "/policies", "/logs", "/asyncapi.json")


def _fill(template: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), template)


def _shape(response: httpx.Response) -> tuple[int, Any]:
    """What a caller can tell apart: the status and the body without its request id."""
    try:
        body = response.json()
    except ValueError:
        return response.status_code, response.text
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, body


async def test_10_tenants_no_rows_leak_admin_surfaces_403_no_enumeration(
    settings: IngressSettings, server: LiveServer, tenants: Tenants
) -> None:
    t = tenants
    routes = _routes(settings)
    admin_routes = [(m, p) for m, p in routes if p.startswith(ADMIN_PREFIXES)]
    own_ids = {
        "customer_id": str(t.a.id),
        "key_ref": t.a.key_id,
        "policy_id": t.a_policy,
        "rule_id": str(uuid.uuid4()),
        "alert_id": str(uuid.uuid4()),
        "webhook_id": str(uuid.uuid4()),
    }
    statuses: dict[int, int] = {}
    differing: list[str] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        # Every admin surface with B's customer key, naming A's records and unknown ones: 403, identically.
        for method, template in admin_routes:
            answers = []
            for ids in (own_ids, {}):
                path = _fill(template, ids)
                params = {"customer_id": str(t.a.id)} if method == "GET" else None
                body = {} if method in {"POST", "PUT", "PATCH"} else None
                answers.append(await http.request(method, path, params=params, json=body, headers=bearer(t.b.key)))
            for answer in answers:
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if _shape(answers[0]) != _shape(answers[1]):
                differing.append(f"{method} {template}")
            assert [a.status_code for a in answers] == [403, 403], f"{method} {template}: {answers[0].text}"

        # Customer surfaces with B's key and A's identifiers: nothing of A comes back.
        leaked = 0
        own = await http.get("/v1/decisions", params={"format": "ndjson", "limit": 1000}, headers=bearer(t.b.key))
        assert own.status_code == 200
        leaked += sum(1 for line in own.text.splitlines() if str(t.a.id) in line)
        by_request = []
        for request_id in [*t.a_request_ids, f"req_{uuid.uuid4().hex[:24]}"]:
            response = await http.get("/v1/decisions", params={"request_id": request_id}, headers=bearer(t.b.key))
            leaked += len(response.json().get("items", []))
            by_request.append(_shape(response))
        assert len(set(map(repr, by_request))) == 1, "another tenant's request id answers unlike an unknown one"
        named = await http.get("/v1/decisions", params={"customer_id": str(t.a.id)}, headers=bearer(t.b.key))
        assert named.status_code == 422  # the customer is the key's, never a parameter
        forged = await http.post("/v1/check", json={**CHECK, "customer_id": str(t.a.id)}, headers=bearer(t.b.key))
        assert forged.status_code == 422
        # A's cursor in B's hands positions nothing of A's.
        page = await http.get("/v1/decisions", params={"limit": 1}, headers=bearer(t.a.key))
        cursor = page.json()["next_cursor"]
        crossed = await http.get("/v1/decisions", params={"limit": 1, "cursor": cursor}, headers=bearer(t.b.key))
        leaked += len(crossed.json().get("items", [])) if crossed.status_code == 200 else 0

        # A's key id with a wrong secret answers as an unknown key does (no key enumeration).
        forged_key = _same_key_id_other_secret(t.a.key)
        unknown_key = generate_key("live").key
        one = await http.post("/v1/check", json=CHECK, headers=bearer(forged_key))
        two = await http.post("/v1/check", json=CHECK, headers=bearer(unknown_key))
        assert one.status_code == two.status_code == 401
        assert _shape(one) == _shape(two)
    customer_routes = sorted({p for _, p in routes if p.startswith("/v1/")})
    figures(
        10,
        "tenant isolation",
        admin_routes_tried=len(admin_routes),
        admin_answers=" ".join(f"{k}={v}" for k, v in sorted(statuses.items())),
        answers_differing_own_vs_unknown_id=len(differing),
        customer_routes=customer_routes,
        rows_leaked=leaked,
        wrong_secret_vs_unknown_key="identical 401",
    )
    assert not differing, differing
    assert leaked == 0


def _same_key_id_other_secret(key: str) -> str:
    """A checksum-valid key with the same key id as ``key`` and another secret."""
    from ingress.auth.keys import ALPHABET, CHECK_LEN, _checksum

    body = key[:-CHECK_LEN]
    prefix, secret = body[:-32], body[-32:]
    other = "".join(random.choice(ALPHABET) for _ in secret)
    return prefix + other + _checksum(prefix + other)


async def test_11_fields_a_caller_may_not_set_are_refused_with_422(
    server: LiveServer, tenants: Tenants, pg_pool: asyncpg.Pool
) -> None:
    t = tenants
    key_body = {"customer_id": str(t.a.id), "name": "k"}
    policy_body = {"customer_id": str(t.a.id), "name": "p", "rules": {"max_tokens": 100}}
    attempts: list[tuple[str, str, dict[str, Any], str, str]] = [
        ("POST", "/v1/check", {**CHECK, "customer_id": str(t.b.id)}, "customer_id", t.a.key),
        ("POST", "/v1/check", {**CHECK, "key_id": t.b.key_id}, "key_id", t.a.key),
        ("POST", "/admin/keys", {**key_body, "tier": "pro"}, "tier", t.admin_key),
        ("POST", "/admin/keys", {**key_body, "is_admin": True}, "is_admin", t.admin_key),
        ("POST", "/admin/keys", {**key_body, "key_hash": "$2b$04$" + "x" * 53}, "key_hash", t.admin_key),
        ("POST", "/admin/keys", {**key_body, "key": "sk_live_chosen"}, "key", t.admin_key),
        ("POST", "/admin/customers", {"name": "c", "id": str(uuid.uuid4())}, "id", t.admin_key),
        ("PATCH", f"/admin/customers/{t.a.id}", {"deleted_at": "2020-01-01T00:00:00Z"}, "deleted_at", t.admin_key),
        ("POST", "/policies", {**policy_body, "version": 7}, "version", t.admin_key),
        ("PUT", f"/policies/{t.a_policy}", {**policy_body, "version": 7}, "customer_id", t.admin_key),
        ("PATCH", f"/policies/{t.a_policy}", {"version": 7}, "version", t.admin_key),
        ("PATCH", f"/policies/{t.a_policy}", {"customer_id": str(t.b.id)}, "customer_id", t.admin_key),
    ]
    keys_before = await pg_pool.fetchval("SELECT count(*) FROM api_keys WHERE customer_id = $1", t.a.id)
    version_before = await pg_pool.fetchval("SELECT version FROM policies WHERE id = $1", uuid.UUID(t.a_policy))
    results = []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for method, path, body, field, key in attempts:
            response = await http.request(method, path, json=body, headers=bearer(key))
            named = any(d["field"].endswith(field) for d in response.json().get("details") or [])
            results.append((f"{method} {path.split('/')[1]}:{field}", response.status_code, named))
    keys_after = await pg_pool.fetchval("SELECT count(*) FROM api_keys WHERE customer_id = $1", t.a.id)
    version_after = await pg_pool.fetchval("SELECT version FROM policies WHERE id = $1", uuid.UUID(t.a_policy))
    figures(
        11,
        "mass assignment",
        attempts=len(attempts),
        answers=" ".join(f"{s}" for _, s, _ in results),
        field_named=sum(1 for *_, n in results if n),
        records_changed=(keys_after - keys_before) + (version_after - version_before),
    )
    assert all(status == 422 for _, status, _ in results), results
    assert all(named for *_, named in results), results
    assert (keys_after, version_after) == (keys_before, version_before)


TEN_MIB = 10 * 1024 * 1024


async def test_12_ten_mib_bodies_plain_and_chunked_get_413_and_memory_stays_flat(
    server: LiveServer, tenants: Tenants
) -> None:
    pid = server.proc.pid
    blob = b"x" * TEN_MIB

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, TEN_MIB, 64 * 1024):
            yield blob[start : start + 64 * 1024]

    async def send(chunked: bool) -> int:
        headers = {**bearer(tenants.a.key), "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            if chunked:
                response = await http.post("/v1/check", content=chunks(), headers=headers)
                assert "content-length" not in response.request.headers
            else:
                response = await http.post("/v1/check", content=blob, headers=headers)
        return response.status_code

    warm = [await send(False), await send(True)]  # first requests may grow pools once
    before = rss_kib(pid)
    statuses = []
    for i in range(10):
        statuses.append(await send(chunked=i % 2 == 1))
    after = rss_kib(pid)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        still = (await http.post("/v1/check", json=CHECK, headers=bearer(tenants.a.key))).status_code
    growth_mib = (after - before) / 1024
    figures(
        12,
        "10 MiB bodies, plain and chunked",
        load="12 requests of 10 MiB (6 plain, 6 chunked), one at a time",
        answered=" ".join(f"{s}={(warm + statuses).count(s)}" for s in sorted(set(warm + statuses))),
        rss_before_mib=round(before / 1024, 1),
        rss_after_mib=round(after / 1024, 1),
        growth_mib=round(growth_mib, 1),
        next_check=still,
    )
    assert warm + statuses == [413] * 12
    assert growth_mib < 8, f"RSS grew {growth_mib:.1f} MiB over 10 bodies of 10 MiB"
    assert still == 200


def _bcrypt_runs(exposition: str) -> float:
    """bcrypt verifications the process ran so far (``governance_auth_bcrypt_calls``, from the verifiers' count)."""
    assert "# TYPE governance_auth_bcrypt_calls gauge" in exposition, "the bcrypt count is not exposed"
    return metric(exposition, "governance_auth_bcrypt_calls")


def _invalid_key() -> str:
    """A key of the right shape whose checksum does not match (a forgery or a typo)."""
    key = generate_key("live").key
    return key[:-1] + ("A" if key[-1] != "A" else "B")


@pytest.mark.slow
async def test_14_flood_of_forged_and_unknown_keys_beside_legitimate_traffic(
    server: LiveServer, tenants: Tenants
) -> None:
    pid = server.proc.pid
    legit_rate, forged_rate, unknown_rate, seconds = 10, 40, 20, 15

    async def flood(rate: float, make_key: Any) -> dict[int, int]:
        answers: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            began = time.monotonic()
            pending = []

            async def one(key: str) -> None:
                status = (await http.post("/v1/check", json=CHECK, headers=bearer(key))).status_code
                answers[status] = answers.get(status, 0) + 1

            for i in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, began + i / rate - time.monotonic()))
                pending.append(asyncio.create_task(one(make_key())))
            await asyncio.gather(*pending)
        return answers

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        first_use = _bcrypt_runs((await http.get("/metrics")).text)
        assert (await http.post("/v1/check", json=CHECK, headers=bearer(tenants.b.key))).status_code == 200
        bcrypt_before = _bcrypt_runs((await http.get("/metrics")).text)
        assert bcrypt_before - first_use == 1, "the counter does not see a key's first (bcrypt) verification"
        cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
        legit, forged, unknown = await asyncio.gather(
            steady_load(server.url, tenants.a.key, rate=legit_rate, duration_s=seconds),
            flood(forged_rate, _invalid_key),
            flood(unknown_rate, lambda: generate_key("live").key),
        )
        cpu = cpu_seconds(pid) - cpu_before
        wall = time.monotonic() - wall_before
        bcrypt_after = _bcrypt_runs((await http.get("/metrics")).text)
    requests = legit.sent + sum(forged.values()) + sum(unknown.values())
    success = legit.of(200) / legit.sent
    figures(
        14,
        "flood of forged and unknown keys beside legitimate traffic",
        load=f"legit {legit_rate}/s + checksum-invalid {forged_rate}/s + checksum-valid unknown {unknown_rate}/s"
        f" x {seconds}s",
        legit=f"{legit.answered()} ({success:.1%}), p99 {legit.percentile(99):.0f} ms",
        forged=forged,
        unknown=unknown,
        bcrypt_calls=int(bcrypt_after - bcrypt_before),
        server_cpu=f"{cpu:.1f}s over {wall:.0f}s ({cpu / wall:.0%} of a core, {cpu / requests * 1000:.1f} ms/request)",
    )
    assert success >= 0.99, legit.answered()
    assert forged == {401: forged_rate * seconds}
    assert unknown == {401: unknown_rate * seconds}
    assert bcrypt_after - bcrypt_before == 0, "a forged or unknown key reached bcrypt"
    assert cpu / requests < 0.010, f"{cpu / requests * 1000:.1f} ms of CPU per request"


@pytest.mark.slow
async def test_16_slow_clients_do_not_stop_others_being_answered(server: LiveServer, tenants: Tenants) -> None:
    host, port = "127.0.0.1", int(server.url.rsplit(":", 1)[1])
    sockets_n, trickle_s, rate = 40, 15, 10
    baseline = await steady_load(server.url, tenants.a.key, rate=rate, duration_s=5)

    def open_slow() -> socket.socket:
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(b"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        return sock

    slow = [await asyncio.to_thread(open_slow) for _ in range(sockets_n)]
    closed_by_server = 0

    async def trickle() -> None:
        nonlocal closed_by_server
        for second in range(trickle_s):  # bounded: one header line per socket per second
            for sock in list(slow):
                try:
                    sock.sendall(f"X-Slow-{second}: {'a' * 10}\r\n".encode())
                except OSError:
                    closed_by_server += 1
                    slow.remove(sock)
            await asyncio.sleep(1)

    try:
        trickling = asyncio.create_task(trickle())
        await asyncio.sleep(1)
        during = await steady_load(server.url, tenants.a.key, rate=rate, duration_s=trickle_s - 3)
        await trickling
    finally:
        for sock in slow:
            sock.close()
    figures(
        16,
        "slow clients (slowloris-style header trickle)",
        load=f"{sockets_n} sockets trickling a header line per second for {trickle_s}s; checks at {rate}/s",
        answered=during.answered(),
        p50_p99_ms_before=f"{baseline.percentile(50):.0f}/{baseline.percentile(99):.0f}",
        p50_p99_ms_during=f"{during.percentile(50):.0f}/{during.percentile(99):.0f}",
        slow_sockets_closed_by_server=closed_by_server,
    )
    assert during.statuses == {"200": during.sent}, during.answered()
    assert during.percentile(99) < max(1000.0, 5 * baseline.percentile(99))
