"""A real broker with the compose stack's SASL/SCRAM configuration (infra/compose/kafka/server.properties), started
from the local stack's Kafka jars: our admin client, producer and consumer get in with the configured credentials;
a wrong password and a PLAINTEXT client do not."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from infra.kafka import KafkaSecurity, build_kafka_broker
from tests.support.processes import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("GOVERNANCE_STATE_DIR", ROOT / ".state"))
LIBS = STATE / "kafka" / "libs"
TEMPLATE = ROOT / "infra" / "compose" / "kafka" / "server.properties"
LOG4J = ROOT / "infra" / "local" / "kafka" / "log4j2.properties"
USER, PASSWORD = "governance", "scram-test-password"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        shutil.which("java") is None or not (LIBS / ".complete").exists(), reason="no local Kafka jars (make services)"
    ),
]


@dataclass
class SaslBroker:
    bootstrap: str
    log: Path


def _start(folder: Path) -> tuple[subprocess.Popen[bytes], int, Path] | None:
    """Render the compose configuration on free ports, format with the SCRAM user, start; None when the broker
    exited before it started (a port taken in the meantime by another process)."""
    shutil.rmtree(folder / "data", ignore_errors=True)
    client, controller, internal = free_port(), free_port(), free_port()
    conf = folder / "server.properties"
    rendered = TEMPLATE.read_text()
    for name, value in {
        "LISTEN_HOST": "127.0.0.1",
        "ADVERTISED_HOST": "127.0.0.1",
        "CLIENT_PORT": str(client),
        "CONTROLLER_PORT": str(controller),
        "INTERNAL_PORT": str(internal),
        "LOG_DIR": str(folder / "data"),
    }.items():
        rendered = rendered.replace(f"@{name}@", value)
    conf.write_text(rendered)
    classpath = f"{LIBS}/*"
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    scram = f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]"
    storage = ["java", "-cp", classpath, "kafka.tools.StorageTool"]
    formatted = subprocess.run(
        [*storage, "format", "-t", cluster_id, "-c", str(conf), "--add-scram", scram],
        capture_output=True,
        text=True,
        check=False,
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    log = folder / "kafka.log"
    log.write_text("")
    with log.open("ab") as out:
        java = ["java", "-Xmx256m", "-Xms128m", f"-Dlog4j2.configurationFile={LOG4J}", "-cp", classpath]
        proc = subprocess.Popen(
            [*java, "kafka.Kafka", str(conf)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    deadline = time.monotonic() + 120
    while "Kafka Server started" not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            return None
        assert time.monotonic() < deadline, "the SASL broker did not start"
        time.sleep(0.3)
    wait_for_port(client)
    return proc, client, log


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    folder = tmp_path_factory.mktemp("sasl-kafka")
    started = None
    for _ in range(3):
        started = _start(folder)
        if started is not None:
            break
    assert started is not None, (folder / "kafka.log").read_text(errors="replace")[-3000:]
    proc, client, log = started
    try:
        yield SaslBroker(f"127.0.0.1:{client}", log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


SCRAM = KafkaSecurity(protocol="SASL_PLAINTEXT", mechanism="SCRAM-SHA-512", username=USER, password=PASSWORD)


async def test_our_clients_authenticate_with_scram(sasl_broker: SaslBroker) -> None:
    topic = f"sasl.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=sasl_broker.bootstrap, **SCRAM.client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    broker = build_kafka_broker(sasl_broker.bootstrap, client_id="sasl-test", security=SCRAM)
    await broker.connect()
    try:
        await broker.publish(b"hello over scram", topic=topic, key=b"k")
    finally:
        await broker.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=sasl_broker.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        **SCRAM.client_options(),
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.value == b"hello over scram"


@pytest.mark.parametrize(
    "security",
    [
        KafkaSecurity(protocol="SASL_PLAINTEXT", mechanism="SCRAM-SHA-512", username=USER, password="wrong"),
        KafkaSecurity(protocol="SASL_PLAINTEXT", mechanism="SCRAM-SHA-512", username="intruder", password=PASSWORD),
        KafkaSecurity(),  # PLAINTEXT
    ],
    ids=["wrong-password", "unknown-user", "plaintext"],
)
async def test_a_client_without_the_credentials_is_refused(sasl_broker: SaslBroker, security: KafkaSecurity) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=sasl_broker.bootstrap, request_timeout_ms=5000, **security.client_options()
    )

    async def produce() -> None:
        await producer.start()
        await producer.send_and_wait("anything", b"x")

    with pytest.raises((KafkaError, OSError)):
        await produce()
    await producer.stop()
