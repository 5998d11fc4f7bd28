"""One node of the local three-node KRaft cluster (``kafka_cluster.py``): its folder, its ``server.properties``,
formatting its storage and launching its JVM. Standard library only.

Every node is broker and controller at once; its configuration, data folder and log live under ``folder``.
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from infra.local.daemon import HOST, port_open
from infra.local.kafka_local import KAFKA_LOG4J, format_storage_command

STARTED = "Kafka Server started"


class ClusterError(RuntimeError):
    """The cluster could not start; the message names the node and ends with the tail of its log."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together while picking, so none is picked twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class ClusterNode:
    node_id: int
    port: int  # the client (and replication) listener
    controller_port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def conf(self) -> Path:
        return self.folder / "server.properties"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        return self.folder / "kafka.log"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self, tail: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def started(self) -> bool:
        return self.alive() and STARTED in self.log(tail=10**9) and port_open(self.port)

    def config(self, voters: str, replicas: int) -> str:
        """This node's ``server.properties`` in a cluster of ``replicas`` nodes whose controller quorum is
        ``voters`` (``id@host:port,...``)."""
        min_isr = min(2, replicas)
        return "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={self.node_id}",
                f"controller.quorum.voters={voters}",
                f"listeners=PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://{HOST}:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.data}",
                "num.partitions=3",
                f"default.replication.factor={replicas}",
                f"min.insync.replicas={min_isr}",
                "auto.create.topics.enable=false",
                "unclean.leader.election.enable=false",
                f"offsets.topic.replication.factor={replicas}",
                "offsets.topic.num.partitions=6",
                f"transaction.state.log.replication.factor={replicas}",
                f"transaction.state.log.min.isr={min_isr}",
                f"share.coordinator.state.topic.replication.factor={replicas}",
                f"share.coordinator.state.topic.min.isr={min_isr}",
                "group.initial.rebalance.delay.ms=0",
                "",
            ]
        )

    def format(self, cluster_id: str, config: str, classpath: str) -> None:
        """Write ``config`` and format the storage for ``cluster_id``, unless formatted already."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(config)
        if (self.data / "meta.properties").exists():
            return
        proc = subprocess.run(
            format_storage_command(classpath, cluster_id, self.conf),
            check=False,
            text=True,
            capture_output=True,
        )
        if proc.returncode != 0:
            raise ClusterError(f"node {self.node_id}: formatting storage failed:\n{proc.stdout[-1500:]}{proc.stderr}")

    def launch(self, classpath: str, heap: str) -> None:
        """Start the node's JVM, its output appended to its log; returns at once (``started`` says when it is up)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    "java",
                    f"-Xmx{heap}",
                    f"-Xms{heap}",
                    "-XX:+UseSerialGC",  # small heaps on a small machine: one GC thread per node
                    "-XX:TieredStopAtLevel=1",  # less JIT work at start; the loads here are small
                    "-Djava.awt.headless=true",
                    f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(self.conf),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the caller's terminal reaches the caller, which stops us
            )
