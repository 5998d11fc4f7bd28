"""A three-node Apache Kafka cluster (KRaft) on loopback, for fault tests that need replicas: kill a broker and see
what an ``acks=all`` producer and the consumers make of it.

Every node is broker and controller at once (``process.roles=broker,controller``), the three are the controller
quorum, and each has its own configuration, data folder and log under ``<folder>/node-<id>/``, where ``folder``
is the caller's. The nodes run from the jars the local stack fetches (``infra/local/kafka_local.py``,
``kafka_classpath``), on free loopback ports picked at start: never the local broker's 9092/9093. Internal topics
have 3 replicas and ``min.insync.replicas=2``; the broker creates no topic by itself.

    async with kafka_cluster(tmp / "cluster") as cluster:   # all three up and registered on entry
        cluster.bootstrap                              # "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
        killed = await cluster.kill_leader("topic", partition=0)   # SIGKILL; returns the node id
    # every node stopped, the folder removed

A node's configuration, storage and process are ``kafka_node.py``; what a live node reports (brokers, partitions,
topic configuration) is ``kafka_metadata.py``. The start and stop are standard library only; the metadata helpers
(``leaders``, ``wait_for_brokers``, ``kill_leader``, ``wait_for_new_leader``) use aiokafka, imported when called.

Usage: python -m infra.local.kafka_cluster FOLDER   (starts a cluster, prints its bootstrap servers, runs until
       Ctrl-C, then stops it and removes FOLDER)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local.daemon import HOST
from infra.local.kafka_local import kafka_classpath
from infra.local.kafka_metadata import describe_partitions, describe_topic_config, registered_brokers
from infra.local.kafka_node import ClusterError, ClusterNode, free_ports

NODES = 3
HEAP = os.environ.get("GOVERNANCE_CLUSTER_KAFKA_HEAP", "256m")


def _cluster_id() -> str:
    """A KRaft cluster id as Kafka's StorageTool makes one (a random UUID, URL-safe base64, no padding, never
    starting with "-", which a command line would read as an option), without starting a JVM for it."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cluster_id


@dataclass
class KafkaCluster:
    """Three KRaft nodes under ``folder``; ``start`` formats and launches them, ``cleanup`` kills them and removes
    the folder."""

    folder: Path
    nodes: list[ClusterNode]
    heap: str = HEAP
    cluster_id: str = field(default_factory=_cluster_id)

    @classmethod
    def create(cls, folder: Path, *, nodes: int = NODES, heap: str = HEAP) -> KafkaCluster:
        ports = free_ports(2 * nodes)
        members = [ClusterNode(i + 1, ports[2 * i], ports[2 * i + 1], folder / f"node-{i + 1}") for i in range(nodes)]
        return cls(folder, members, heap)

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma separated (``KAFKA_BOOTSTRAP_SERVERS``)."""
        return ",".join(node.address for node in self.nodes)

    def node(self, node_id: int) -> ClusterNode:
        return next(node for node in self.nodes if node.node_id == node_id)

    def _config(self, node: ClusterNode) -> str:
        voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in self.nodes)
        return node.config(voters, len(self.nodes))

    def start(self, timeout_s: float = 180.0) -> None:
        """Format (first start only) and launch every node that is not running, and return once each has logged
        that it started and listens. Raises ``ClusterError`` (with the node's log) when one exits or is late."""
        classpath = kafka_classpath()
        waiting = [node for node in self.nodes if not node.alive()]
        for node in waiting:
            node.format(self.cluster_id, self._config(node), classpath)
        for node in waiting:
            node.launch(classpath, self.heap)
        deadline = time.monotonic() + timeout_s
        while not all(node.started() for node in waiting):
            for node in waiting:
                if node.proc is not None and node.proc.poll() is not None:
                    raise ClusterError(
                        f"node {node.node_id} ({node.address}) exited with {node.proc.returncode}:\n{node.log()}"
                    )
            if time.monotonic() > deadline:
                late = [n for n in waiting if not n.started()]
                raise ClusterError(
                    f"nodes {[n.node_id for n in late]} did not start within {timeout_s:.0f} s:\n{late[0].log()}"
                )
            time.sleep(0.3)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (no controlled shutdown) and wait until it is gone."""
        node = self.node(node_id)
        if node.proc is None:
            return
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(timeout=30)

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM every node, SIGKILL those still running after ``grace_s``."""
        running = [node for node in self.nodes if node.alive()]
        for node in running:
            assert node.proc is not None  # noqa: S101
            node.proc.terminate()
        deadline = time.monotonic() + grace_s
        for node in running:
            assert node.proc is not None  # noqa: S101
            try:
                node.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(timeout=30)

    def cleanup(self) -> None:
        """Kill every node that still runs (its data is thrown away, so no graceful stop) and remove the folder."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    node.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.proc.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- metadata, through aiokafka -------------------------------------------------------------------------

    def _alive(self) -> list[str]:
        """The client addresses of the nodes still running (all of them if none is): whom to ask for metadata."""
        alive = ",".join(node.address for node in self.nodes if node.alive()) or self.bootstrap
        return alive.split(",")

    async def wait_for_brokers(self, count: int | None = None, timeout_s: float = 60.0) -> None:
        """Until the cluster metadata lists ``count`` brokers (all nodes by default): a topic with 3 replicas can
        only be created once three brokers are registered and unfenced."""
        wanted = len(self.nodes) if count is None else count
        deadline = time.monotonic() + timeout_s
        seen: set[int] = set()
        while True:
            with contextlib.suppress(Exception):
                seen = await registered_brokers(self._alive())
                if len(seen) >= wanted:
                    return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{len(seen)} of {wanted} brokers registered after {timeout_s:.0f} s: {sorted(seen)}"
                )
            await asyncio.sleep(0.5)

    async def partitions(self, topic: str) -> dict[int, dict[str, Any]]:
        """partition -> ``{"leader", "replicas", "isr"}`` of ``topic``, as a live node sees it (leader -1: none)."""
        return await describe_partitions(self._alive(), topic)

    async def topic_config(self, topic: str) -> dict[str, str]:
        """The topic's effective configuration (``min.insync.replicas`` among it), as a live node reports it."""
        return await describe_topic_config(self._alive(), topic)

    async def leaders(self, topic: str) -> dict[int, int]:
        """partition -> the node id leading it."""
        return {partition: info["leader"] for partition, info in (await self.partitions(topic)).items()}

    async def kill_leader(self, topic: str, partition: int = 0) -> int:
        """SIGKILL the node leading ``partition`` of ``topic``; returns its node id."""
        leader = (await self.leaders(topic))[partition]
        if leader < 0:
            raise ClusterError(f"{topic}[{partition}] has no leader to kill")
        await asyncio.to_thread(self.kill, leader)
        return leader

    async def wait_for_new_leader(self, topic: str, partition: int, old: int, timeout_s: float = 60.0) -> int:
        """Until a live node other than ``old`` leads the partition; returns it."""
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(Exception):
                leader = (await self.leaders(topic))[partition]
                if leader not in (old, -1) and self.node(leader).alive():
                    return leader
            if time.monotonic() > deadline:
                raise ClusterError(f"{topic}[{partition}] has no new leader {timeout_s:.0f} s after node {old} went")
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def kafka_cluster(
    folder: Path, *, nodes: int = NODES, heap: str = HEAP, attempts: int = 3
) -> AsyncIterator[KafkaCluster]:
    """A started cluster under ``folder``: every node up and registered as a broker. On exit every node is
    killed and the folder removed, whatever happened. A start that failed because a picked port was taken in the
    meantime is tried again on fresh ports, up to ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        cluster = KafkaCluster.create(folder, nodes=nodes, heap=heap)
        try:
            await asyncio.to_thread(cluster.start)
            await cluster.wait_for_brokers()
        except ClusterError as exc:
            await asyncio.to_thread(cluster.cleanup)
            if attempt == attempts or "Address already in use" not in str(exc):
                raise
            continue
        except BaseException:
            await asyncio.to_thread(cluster.cleanup)
            raise
        break
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.cleanup)


async def _serve(folder: Path) -> None:
    async with kafka_cluster(folder) as cluster:
        print(f"KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap}", flush=True)
        for node in cluster.nodes:
            print(f"node {node.node_id}  {node.address}  controller :{node.controller_port}  log {node.log_path}")
        while all(node.alive() for node in cluster.nodes):  # noqa: ASYNC110 - polling child processes
            await asyncio.sleep(1)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(Path(argv[0]).resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
