"""The local stack's Kafka: the Apache Kafka jars fetched by Maven (``infra/local/kafka/pom.xml``) into
``.state/kafka/libs``, one KRaft node (broker and controller) on 127.0.0.1:9092 and :9093
(``GOVERNANCE_KAFKA_PORT``, ``GOVERNANCE_KAFKA_CONTROLLER_PORT``), storage formatted on first start, heap capped at
``GOVERNANCE_KAFKA_HEAP``. Standard library only."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

from infra.local.daemon import (
    HOST,
    LOGS,
    ROOT,
    RUN,
    STATE,
    Service,
    StackError,
    pid_alive,
    port_open,
    run,
    terminate,
    wait,
)
from infra.local.debian_packages import apt_install

KAFKA_PORT = int(os.environ.get("GOVERNANCE_KAFKA_PORT", "9092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("GOVERNANCE_KAFKA_CONTROLLER_PORT", "9093"))
KAFKA_HEAP = os.environ.get("GOVERNANCE_KAFKA_HEAP", "512m")

KAFKA_HOME = STATE / "kafka"
KAFKA_LIBS = KAFKA_HOME / "libs"
KAFKA_DATA = KAFKA_HOME / "data"
KAFKA_CONF = KAFKA_HOME / "server.properties"
KAFKA_LOG = LOGS / "kafka.log"
KAFKA_PID = RUN / "kafka.pid"
KAFKA_POM = ROOT / "infra" / "local" / "kafka" / "pom.xml"
KAFKA_LOG4J = ROOT / "infra" / "local" / "kafka" / "log4j2.properties"


def _fetch() -> None:
    marker = KAFKA_LIBS / ".complete"
    if marker.exists() and marker.read_text() == KAFKA_POM.read_text():
        return
    if shutil.which("java") is None:
        apt_install("openjdk-17-jre-headless")
    if shutil.which("mvn") is None:
        apt_install("maven")
    print("fetching Apache Kafka jars from Maven Central ...", flush=True)
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    KAFKA_LIBS.mkdir(parents=True)
    proc = run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(KAFKA_POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={KAFKA_LIBS}",
        ],
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"Kafka: fetching jars with Maven failed:\n{proc.stdout[-2000:]}{proc.stderr[-1000:]}")
    marker.write_text(KAFKA_POM.read_text())


def kafka_classpath() -> str:
    """The Java classpath of the Kafka broker, after fetching its jars when they are missing (also used by
    infra/local/kafka_cluster.py)."""
    _fetch()
    return f"{KAFKA_LIBS}/*"


def _config() -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{HOST}:{KAFKA_CONTROLLER_PORT}",
            f"listeners=PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}",
            f"advertised.listeners=PLAINTEXT://{HOST}:{KAFKA_PORT}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={KAFKA_DATA}",
            "num.partitions=3",
            "auto.create.topics.enable=false",  # the project creates its topics (infra/kafka_topics.py)
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=6",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=168",
            "",
        ]
    )


def _started() -> bool:
    if not port_open(KAFKA_PORT):
        return False
    try:
        return "Kafka Server started" in KAFKA_LOG.read_text(errors="replace")
    except OSError:
        return False


def healthy() -> bool:
    return pid_alive(KAFKA_PID) is not None and port_open(KAFKA_PORT)


def format_storage_command(classpath: str, cluster_id: str, config: Path | str) -> list[str]:
    """Kafka's own tool formatting a KRaft node's storage for ``cluster_id`` from its ``config`` file (the local
    node, the three-broker cluster's nodes and the tests' disposable brokers all format this way)."""
    return ["java", "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)]


def start() -> None:
    classpath = kafka_classpath()
    if healthy():
        return
    if port_open(KAFKA_PORT) or port_open(KAFKA_CONTROLLER_PORT):
        raise StackError(f"Kafka: {HOST}:{KAFKA_PORT} or :{KAFKA_CONTROLLER_PORT} is already taken by another process")
    KAFKA_HOME.mkdir(parents=True, exist_ok=True)
    KAFKA_CONF.write_text(_config())
    if not (KAFKA_DATA / "meta.properties").exists():
        cluster_id = run(["java", "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"]).stdout.strip()
        cluster_id = cluster_id.splitlines()[-1] if cluster_id else str(uuid.uuid4())
        proc = run(format_storage_command(classpath, cluster_id, KAFKA_CONF), check=False)
        if proc.returncode != 0:
            raise StackError(f"Kafka: formatting storage failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    KAFKA_LOG.write_text("")
    log = KAFKA_LOG.open("ab")
    proc_ = subprocess.Popen(
        [
            "java",
            f"-Xmx{KAFKA_HEAP}",
            f"-Xms{KAFKA_HEAP}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(KAFKA_CONF),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    KAFKA_PID.write_text(str(proc_.pid))
    if not wait(lambda: _started() or proc_.poll() is not None, 90):
        raise StackError("Kafka did not report 'Kafka Server started' within 90 s")
    if proc_.poll() is not None:
        raise StackError(f"Kafka exited with status {proc_.returncode}")


def stop() -> None:
    terminate(KAFKA_PID, seconds=30)


SERVICE = Service("Kafka", f"{HOST}:{KAFKA_PORT}", KAFKA_LOG, start, stop, healthy)
