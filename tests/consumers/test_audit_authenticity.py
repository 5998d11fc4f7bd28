"""The audit writer stores only decisions ingress signed: a receipt that verifies against the published receipt keys
and signs the event's own fields. Anything else is dead-lettered (reason ``unverified_receipt``), with the DLQ
record shape and the commit-after-write guarantee of every other invalid record.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import ConsumerRecord
from clickhouse_connect.driver.client import Client

from consumers.audit.authenticity import receipt_body_for, receipt_problem
from consumers.audit.receipt_check import ReceiptCheck
from consumers.audit.transform import Accepted, DeadLetterRecord, Origin
from consumers.audit.writer import AuditWriter
from infra.receipt_keys import PublishedReceiptKeys, ReceiptKeyring, ReceiptKeysUnavailable
from ingress.check.receipts import ReceiptSigner
from ingress.settings import IngressSettings
from schemas.decision_event import DecisionEvent
from schemas.receipt import b64url_decode, legacy_request_digest
from tests.conftest import LiveServer
from tests.support.audit import (
    RECEIPT_KEYS_DIR,
    audit_settings,
    caught_up,
    committed_offset,
    ends,
    make_event,
    produce,
    read_topic,
    stored_ids,
    wait_until,
)
from tests.support.processes import free_port

pytestmark = pytest.mark.timeout(60)


def _published_key(event: DecisionEvent) -> bytes | None:
    assert event.receipt is not None
    return ReceiptKeyring(RECEIPT_KEYS_DIR).public_keys().get(event.receipt.key_id)


def _forged(tmp_path: Path, event: DecisionEvent) -> DecisionEvent:
    """``event`` re-signed by a key that was never published where the writer looks."""
    signer = ReceiptSigner(ReceiptKeyring(tmp_path / "forger-keys"))
    return event.model_copy(update={"receipt": signer.sign(receipt_body_for(event))})


def test_a_genuine_receipt_passes_and_each_kind_of_forgery_is_named(tmp_path: Path) -> None:
    event = make_event(uuid.uuid4())
    assert receipt_problem(event, _published_key(event)) is None

    unsigned = event.model_copy(update={"receipt": None})
    assert receipt_problem(unsigned, None) == "the event carries no receipt"

    forged = _forged(tmp_path, event)
    assert forged.receipt is not None
    problem = receipt_problem(forged, None)
    assert problem is not None
    assert "never published" in problem
    # A forger's key presented under the id of a published one does not verify either.
    assert event.receipt is not None
    moved = forged.model_copy(update={"receipt": forged.receipt.model_copy(update={"key_id": event.receipt.key_id})})
    problem = receipt_problem(moved, _published_key(event))
    assert problem is not None
    assert "does not verify" in problem

    # A genuine receipt on an altered event: the fields that differ are named, their values never.
    altered = event.model_copy(update={"allowed": not event.allowed, "customer_id": uuid.uuid4()})
    problem = receipt_problem(altered, _published_key(event))
    assert problem == "the receipt does not sign this event: allowed, customer_id differ"
    reasoned = event.model_copy(update={"reason": "Within policy limits, says the forger"})
    assert "reason" in (receipt_problem(reasoned, _published_key(event)) or "")


def test_a_v1_receipt_of_an_event_published_before_v2_still_passes() -> None:
    event = make_event(uuid.uuid4()).model_copy(update={"request_digest": legacy_request_digest({"a": 1})})
    body = receipt_body_for(event.model_copy(update={"request_digest": "hmac-sha256:00"})).model_copy(
        update={"v": 1, "key_id": None, "reason": None, "request_digest": event.request_digest}
    )
    signed = event.model_copy(update={"receipt": ReceiptSigner(ReceiptKeyring(RECEIPT_KEYS_DIR)).sign(body)})
    assert receipt_problem(signed, _published_key(signed)) is None


async def test_a_batch_naming_many_made_up_key_ids_costs_one_read_of_the_keys(tmp_path: Path) -> None:
    keys = PublishedReceiptKeys(RECEIPT_KEYS_DIR, refresh_s=0.2)
    genuine = make_event(uuid.uuid4())
    assert await keys.get(genuine.receipt.key_id if genuine.receipt else "") is not None
    assert keys.reads == 1
    forged = _forged(tmp_path, make_event(uuid.uuid4()))
    assert forged.receipt is not None
    made_up = [
        forged.model_copy(update={"receipt": forged.receipt.model_copy(update={"key_id": f"rk_{n:016x}"})})
        for n in range(40)
    ]
    items = [
        (
            Accepted(Origin("decisions", 0, offset), event),
            ConsumerRecord("decisions", 0, offset, 0, 0, None, b"{}", None, 0, 2, []),
        )
        for offset, event in enumerate([genuine, *made_up])
    ]
    check = ReceiptCheck(keys, asyncio.Event(), lambda _attempt: asyncio.sleep(0))
    checked = await check.check(items)
    assert checked[0] is items[0][0]  # the genuine one, in its place
    assert [getattr(item, "reason", None) for item in checked[1:]] == ["unverified_receipt"] * 40
    assert keys.reads == 2  # one more read for all 40 unknown ids together, not one wait and read per id


@pytest.fixture
async def writers() -> AsyncIterator[list[AuditWriter]]:
    started: list[AuditWriter] = []
    yield started
    for writer in started:
        await writer.stop()


async def test_the_writer_stores_genuine_decisions_and_dead_letters_the_rest(
    settings: IngressSettings, clickhouse: Client, writers: list[AuditWriter], tmp_path: Path
) -> None:
    config = audit_settings(settings)
    customer = uuid.uuid4()
    genuine = [make_event(customer) for _ in range(3)]
    unsigned = make_event(customer).model_copy(update={"receipt": None})
    forged = _forged(tmp_path, make_event(customer))
    altered = make_event(customer, allowed=False, risk=90).model_copy(update={"allowed": True, "risk_score": 0})
    offsets = await produce(
        settings.kafka_bootstrap_servers,
        config.decisions_topic,
        [genuine[0], unsigned, genuine[1], forged, altered, genuine[2]],
    )
    keys = PublishedReceiptKeys(config.receipt_keys_dir)
    writer = AuditWriter(config, clickhouse, receipt_keys=keys)
    writers.append(writer)
    await writer.start()
    await wait_until(lambda: caught_up(writer, config.decisions_topic, offsets))

    assert stored_ids(clickhouse, customer) == {e.event_id for e in genuine}
    assert writer.stats.dlq_count == 3
    dead = await read_topic(settings.kafka_bootstrap_servers, config.dlq_topic, expected=3)
    records = {
        (r.origin.partition, r.origin.offset): r for r in (DeadLetterRecord.model_validate_json(d.value) for d in dead)
    }
    assert set(records) == {offsets[1], offsets[3], offsets[4]}
    for position, needle in ((1, "no receipt"), (3, "never published"), (4, "allowed, risk_score differ")):
        record = records[offsets[position]]
        assert record.reason == "unverified_receipt"
        assert record.consumer_group == config.audit_group_id
        assert record.origin.topic == config.decisions_topic
        assert needle in record.detail
        assert record.raw_value_base64  # the record as consumed, for whoever investigates
    for message in dead:
        assert {k: v.decode() for k, v in message.headers}["dlq-reason"] == "unverified_receipt"
    # Committed past everything, the dead-lettered records too, as for any invalid record.
    for key, end in ends(config.decisions_topic, offsets).items():
        partition = int(key.rsplit(":", 1)[1])
        assert (
            await committed_offset(
                settings.kafka_bootstrap_servers, config.audit_group_id, config.decisions_topic, partition
            )
            == end
        )
    assert keys.reads <= 3  # the keys are read once, and again only for a key id not known yet (rate-limited)


async def test_published_keys_are_read_from_ingress_over_http(live_server: LiveServer) -> None:
    keys = PublishedReceiptKeys(url=f"{live_server.url}/v1/receipts/keys", refresh_s=0.2)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        published = (await http.get("/v1/receipts/keys")).json()["keys"]
    for entry in published:
        assert await keys.get(entry["key_id"]) == b64url_decode(entry["public_key"])
    assert keys.reads == 1  # read once for all of them
    assert await keys.get("rk_0000000000000000") is None  # read again, then known not to exist
    assert keys.reads == 2

    closed = PublishedReceiptKeys(url=f"http://127.0.0.1:{free_port()}/v1/receipts/keys", timeout_s=1)
    with pytest.raises(ReceiptKeysUnavailable):
        await closed.get(published[0]["key_id"])


async def test_keys_that_cannot_be_read_hold_the_batch_uncommitted_until_they_can(
    settings: IngressSettings, clickhouse: Client, writers: list[AuditWriter]
) -> None:
    config = audit_settings(settings)
    customer = uuid.uuid4()
    event = make_event(customer)
    offsets = await produce(settings.kafka_bootstrap_servers, config.decisions_topic, [event])
    keys = PublishedReceiptKeys(url=f"http://127.0.0.1:{free_port()}/v1/receipts/keys", timeout_s=0.5)
    writer = AuditWriter(config, clickhouse, receipt_keys=keys)
    writers.append(writer)
    await writer.start()
    await wait_until(lambda: keys.reads >= 3)  # it keeps trying, backing off
    partition, _ = offsets[0]
    assert writer.stats.dlq_count == 0  # not the event's fault: nothing dead-lettered
    assert stored_ids(clickhouse, customer) == set()
    assert (
        await committed_offset(
            settings.kafka_bootstrap_servers, config.audit_group_id, config.decisions_topic, partition
        )
        is None
    )
    # The keys become readable (here: the keyring folder instead of the unreachable URL): the event is stored.
    keys.url, keys.folder = "", RECEIPT_KEYS_DIR
    await wait_until(lambda: caught_up(writer, config.decisions_topic, offsets))
    assert stored_ids(clickhouse, customer) == {event.event_id}
    assert writer.stats.dlq_count == 0
