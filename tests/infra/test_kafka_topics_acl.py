"""Topic creation by an account that may not create topics (a broker with an authorizer, as a managed Kafka): the
process logs what the operator must create and goes on producing to the topics that exist, instead of failing its
start. A broker of the test's own (SASL/PLAIN, KRaft's StandardAuthorizer, no ACL for the application's user)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra import kafka_topics
from infra.kafka_topics import ensure_topics
from tests.support.processes import KafkaProcess, free_port

ADMIN_PASSWORD = "admin-secret-for-tests"
APP_PASSWORD = "app-secret-for-tests"


class AuthorizingKafka(KafkaProcess):
    def _config(self) -> str:
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="admin" password="{ADMIN_PASSWORD}" '
            f'user_admin="{ADMIN_PASSWORD}" user_app="{APP_PASSWORD}";'
        )
        conf = Path(self.folder) / "server.properties"
        conf.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=SASL_PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=SASL_PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
                    "sasl.enabled.mechanisms=PLAIN",
                    "sasl.mechanism.inter.broker.protocol=PLAIN",
                    f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}",
                    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    "super.users=User:admin;User:ANONYMOUS",
                    "allow.everyone.if.no.acl.found=false",
                    f"log.dirs={self.folder}/data",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "",
                ]
            )
        )
        return str(conf)


@pytest.fixture
def authorizing_kafka() -> Iterator[AuthorizingKafka]:
    folder = tempfile.mkdtemp(prefix="governance-test-kafka-acl-")
    server = AuthorizingKafka(free_port(), free_port(), folder)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)


def _sasl(user: str, password: str) -> dict[str, str]:
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }


async def test_an_account_that_may_not_create_topics_is_told_what_to_create(
    authorizing_kafka: AuthorizingKafka, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "app")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", APP_PASSWORD)
    kafka_topics._ensured.clear()
    with caplog.at_level(logging.ERROR, logger="infra.kafka_topics"):
        states = await ensure_topics(authorizing_kafka.bootstrap, ["acl.decisions.v1", "acl.signals.v1"], timeout_s=60)
    assert states == []  # nothing created, nothing seen: and no exception, so the process goes on
    assert "not allowed to create or check topics ['acl.decisions.v1', 'acl.signals.v1']" in caplog.text
    assert "create them with 6 partitions" in caplog.text
    assert not kafka_topics._ensured  # asked again at the next start

    admin = AIOKafkaAdminClient(bootstrap_servers=authorizing_kafka.bootstrap, **_sasl("admin", ADMIN_PASSWORD))
    await admin.start()
    try:
        assert "acl.decisions.v1" not in await admin.list_topics()  # refused, not created
        # The operator creates them; an administrator's ensure then sees them as they are.
        await admin.create_topics([NewTopic("acl.decisions.v1", 6, 1)])
    finally:
        await admin.close()
    for name in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        monkeypatch.setenv(name, {"KAFKA_SASL_USERNAME": "admin", "KAFKA_SASL_PASSWORD": ADMIN_PASSWORD}[name])
    states = await ensure_topics(authorizing_kafka.bootstrap, ["acl.decisions.v1"], timeout_s=60)
    assert [(s.name, s.partitions, s.created) for s in states] == [("acl.decisions.v1", 6, False)]
