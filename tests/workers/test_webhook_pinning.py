"""Webhook calls connect to the address that was checked (no DNS rebinding between check and connect), keep the
host name for HTTP and TLS, and judge NAT64, 6to4 and IPv4-compatible addresses by the IPv4 address inside."""

from __future__ import annotations

import ipaddress
import uuid

import asyncpg
import httpx
import pytest

from ingress.settings import IngressSettings
from tests.conftest import insert_customer
from tests.support.alerts import WebhookReceiver, add_webhook, running_worker, wait_for, webhook_settings
from tests.workers.test_webhook_delivery import deliveries, open_alert
from workers.webhooks.addresses import destination, embedded_ipv4, non_public, pin


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("64:ff9b::7f00:1", True),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 of 169.254.169.254, the metadata service
        ("64:ff9b::a00:1", True),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", False),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::808:808", True),  # the local-use NAT64 prefix: a translator of our own network
        ("2002:7f00:1::", True),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", True),  # 6to4 of 169.254.169.254
        ("2002:c0a8:101::", True),  # 6to4 of 192.168.1.1
        ("2002:808:808::", False),  # 6to4 of 8.8.8.8
        ("::7f00:1", True),  # IPv4-compatible 127.0.0.1
        ("::ffff:a9fe:a9fe", True),  # IPv4-mapped metadata service
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", True),  # Teredo: not global
    ],
)
def test_addresses_wrapping_ipv4_are_judged_by_the_ipv4_inside(address: str, refused: bool) -> None:
    assert non_public(address) is refused


def test_the_embedded_ipv4_address_is_found() -> None:
    assert str(embedded_ipv4(ipaddress.IPv6Address("64:ff9b::c000:201"))) == "192.0.2.1"
    assert str(embedded_ipv4(ipaddress.IPv6Address("2002:c000:201::1"))) == "192.0.2.1"
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700:4700::1111")) is None


def test_a_pinned_destination_names_the_checked_address_and_keeps_the_host() -> None:
    plain = pin("http://hooks.example.com:8080/alerts?x=1#frag", "93.184.216.34")
    assert plain.url == "http://93.184.216.34:8080/alerts?x=1"
    assert plain.headers == {"Host": "hooks.example.com:8080"}
    assert plain.extensions == {}
    tls = pin("https://hooks.example.com/alerts", "2606:4700:4700::1111")
    assert tls.url == "https://[2606:4700:4700::1111]/alerts"
    assert tls.headers == {"Host": "hooks.example.com"}
    assert tls.extensions == {"sni_hostname": "hooks.example.com"}  # TLS verifies the name, not the address
    scoped = pin("http://printer.local:631/hook", "fe80::1%eth0")  # local runs only: a link-local answer
    assert scoped.url == "http://[fe80::1%eth0]:631/hook"
    assert httpx.URL(scoped.url).host == "fe80::1%eth0"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9/hook",
        "http://127.0.0.1:9/hook",
        "http://[64:ff9b::7f00:1]:9/hook",
        "http://[2002:a9fe:a9fe::]/latest/meta-data",
        "http://[::ffff:169.254.169.254]/latest/meta-data",
    ],
)
async def test_outside_local_runs_a_non_public_answer_is_refused_before_any_connection(url: str) -> None:
    target, refused = await destination(url, allow_private=False)
    assert target is None
    assert refused is not None
    assert refused.startswith("refused:")


async def test_the_call_connects_to_the_resolved_address_with_the_host_header_kept(
    pg_pool: asyncpg.Pool, settings: IngressSettings
) -> None:
    """A real delivery to a name: the receiver (on 127.0.0.1 only) gets the call, addressed to the name."""
    customer = await insert_customer(pg_pool)
    receiver = WebhookReceiver()
    await receiver.start()
    url = f"http://localhost:{receiver.port}/hooks/alerts"
    target, refused = await destination(url, allow_private=True)
    assert refused is None
    assert target is not None
    assert target.address == "127.0.0.1"  # IPv4 first: what the receiver listens on
    hook = await add_webhook(pg_pool, customer.id, url)
    await open_alert(pg_pool, customer.id)
    try:
        async with running_worker(webhook_settings(settings)):
            await wait_for(lambda: len(receiver.received) >= 1, what="the call")
    finally:
        await receiver.stop()
    [received] = receiver.received[:1]
    assert received.headers["host"] == f"localhost:{receiver.port}"
    assert received.path == "/hooks/alerts"
    await wait_for(lambda: _delivered(pg_pool, hook.id), what="the delivery to be recorded")


async def _delivered(pool: asyncpg.Pool, webhook_id: uuid.UUID) -> bool:
    found = await deliveries(pool, webhook_id)
    return bool(found) and all(d.status == "delivered" for d in found)
