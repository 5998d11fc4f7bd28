"""The delivery guarantee: an event is acknowledged by Kafka or durably spooled, and the relay loses nothing."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from infra.kafka import build_kafka_broker
from infra.spool import DiskSpool, SpoolFull
from ingress.check.publisher import DecisionPublisher, PublishUnavailable
from tests.support.processes import kafka_process
from workers.spool_relay import SpoolRelay


async def _consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(values) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            values.extend(m.value for records in batch.values() for m in records if m.value is not None)
    finally:
        await consumer.stop()
    return values


def test_spool_write_is_durable_and_ordered(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path / "spool", max_events=3)
    for i in range(3):
        spool.write("t", b"k", {"h": "v"}, f"event-{i}".encode())
    with pytest.raises(SpoolFull):
        spool.write("t", b"k", {}, b"x")
    pending = list(spool.pending())
    assert [e.value for e in pending] == [b"event-0", b"event-1", b"event-2"]
    assert pending[0].headers == {"h": "v"}
    assert not list((tmp_path / "spool").glob(".*.tmp"))
    spool.remove(pending[0])
    assert spool.depth == 2
    assert DiskSpool(tmp_path / "spool").depth == 2  # a new process sees what is on disk


async def _publish_until_acknowledged(publisher: DecisionPublisher, sent: list[bytes], timeout_s: float = 60.0) -> None:
    """Publish warm-up events until Kafka acknowledges one (a fresh broker elects leaders first; a busy machine may
    spool a few). Every attempt is durable either way, so each one is expected downstream."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = f"warm-up-{len(sent)}".encode()
        outcome = await publisher.publish(b"c1", value, publisher.headers())
        sent.append(value)
        if outcome == "kafka":
            return
        assert asyncio.get_running_loop().time() < deadline, "Kafka acknowledged nothing"
        await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(300)  # the bounded waits below fail first, naming what did not happen
async def test_kafka_paused_events_spooled_then_relayed_none_missing(tmp_path: Path) -> None:
    """Invariants only, no timing: every publish is durable (acknowledged or spooled); while the broker is paused
    nothing can be acknowledged, so everything is spooled; after it resumes the relay empties the spool (waited
    for, bounded) and every event sent is on the topic."""
    topic = f"test.spool.{uuid.uuid4().hex[:8]}"  # on the scenario's own broker, deleted with it
    with kafka_process() as kafka:
        broker = build_kafka_broker(kafka.bootstrap, request_timeout_ms=3000)
        await broker.start()
        spool = DiskSpool(tmp_path / "spool")
        publisher = DecisionPublisher(lambda: broker, spool, topic=topic, ack_timeout_s=0.3)
        sent: list[bytes] = []
        await _publish_until_acknowledged(publisher, sent)
        before = []
        for i in range(5):
            value = f"before-{i}".encode()
            before.append(await publisher.publish(b"c1", value, publisher.headers()))
            sent.append(value)
        assert set(before) <= {"kafka", "spool"}
        spooled_before = spool.refresh_depth()

        kafka.pause()
        outcomes = []
        for i in range(10):
            value = f"during-{i}".encode()
            outcomes.append(await publisher.publish(b"c1", value, publisher.headers()))
            sent.append(value)
        assert outcomes == ["spool"] * 10  # a stopped broker acknowledges nothing
        assert spool.refresh_depth() == spooled_before + 10

        kafka.resume()
        relay = SpoolRelay(spool, lambda: broker, ack_timeout_s=10)
        deadline = asyncio.get_running_loop().time() + 90
        while spool.refresh_depth() > 0 and asyncio.get_running_loop().time() < deadline:
            await relay.drain_once()
            if spool.refresh_depth() > 0:
                await asyncio.sleep(0.5)
        assert spool.depth == 0, "the relay did not empty the spool"
        received = await _consume_all(kafka.bootstrap, topic, expected=len(sent), timeout=60)
        await broker.stop()
    # Each sent value arrived at least once (a late ack of a timed-out send may add a duplicate, which the
    # audit log removes by event_id); none is missing.
    assert set(sent) <= set(received)


async def test_unwritable_spool_with_kafka_down_refuses(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    spool = DiskSpool(folder)
    publisher = DecisionPublisher(lambda: None, spool, topic="unused")
    assert await publisher.publish(b"k", b"v", publisher.headers()) == "spool"
    if os.geteuid() == 0:
        # root ignores permission bits: make the spool unwritable by replacing the folder with a file
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
        folder.write_text("not a folder")
    else:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(PublishUnavailable):
        await publisher.publish(b"k", b"v2", publisher.headers())
    assert publisher.stats.failed == 1


def test_a_spool_folder_that_went_missing_keeps_its_count(tmp_path: Path) -> None:
    # The relay recounts the spool periodically; a recount while the folder is gone (a failing disk) must not let
    # the spool take more than its limit once the folder is back.
    from infra.spool import DiskSpool, SpoolFull

    folder = tmp_path / "spool"
    spool = DiskSpool(folder, max_events=3)
    for index in range(3):
        spool.write("t", b"k", {}, f"v{index}".encode())
    saved = tmp_path / "saved"
    folder.rename(saved)
    folder.write_text("not a folder")
    assert spool.refresh_depth() == 3
    folder.unlink()
    saved.rename(folder)
    assert spool.refresh_depth() == 3
    with pytest.raises(SpoolFull):
        spool.write("t", b"k", {}, b"v3")
