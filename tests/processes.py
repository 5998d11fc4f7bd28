"""Throwaway server processes for fault tests: a Redis of the test's own, so stopping it harms no one else."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class RedisProcess:
    port: int
    folder: str
    proc: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is installed by the local stack"
        self.proc = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.folder,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@contextmanager
def redis_process() -> Iterator[RedisProcess]:
    folder = tempfile.mkdtemp(prefix="governance-test-redis-")
    server = RedisProcess(free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class KafkaProcess:
    """A single-node KRaft broker of the test's own, from the jars the local stack fetched."""

    port: int
    controller_port: int
    folder: str
    proc: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> str:
        import pathlib

        conf = pathlib.Path(self.folder) / "server.properties"
        conf.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.folder}/data",
                    "num.partitions=3",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=3",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "",
                ]
            )
        )
        return str(conf)

    def start(self) -> None:
        from infra.local.stack import KAFKA_LIBS

        classpath = f"{KAFKA_LIBS}/*"
        conf = self._config()
        import pathlib

        if not (pathlib.Path(self.folder) / "data" / "meta.properties").exists():
            subprocess.run(
                [
                    "java",
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    "TestClusterId0000000A",
                    "-c",
                    conf,
                ],
                check=True,
                capture_output=True,
            )
        log = open(f"{self.folder}/kafka.log", "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            ["java", "-Xmx256m", "-Xms256m", "-cp", classpath, "kafka.Kafka", conf],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=60)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(19)  # SIGSTOP

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(18)  # SIGCONT

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=20)
            self.proc = None


@contextmanager
def kafka_process() -> Iterator[KafkaProcess]:
    folder = tempfile.mkdtemp(prefix="governance-test-kafka-")
    server = KafkaProcess(free_port(), free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.resume()
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)
