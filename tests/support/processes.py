"""Throwaway server processes for fault tests: a Redis, a Kafka broker, a PostgreSQL cluster of the test's own, so
stopping or pausing one harms no one else. (The project's own processes start through ``infra/local/launcher.py``:
``tests/support/live_server.py``.)"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from infra.local.kafka_local import format_storage_command
from infra.local.launcher import free_port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def wait_until_stopped(pid: int, timeout: float = 10.0) -> None:
    """Until every thread of ``pid`` is in the stopped state (``T`` in ``/proc/<pid>/task/*/stat``)."""
    import pathlib

    deadline = time.monotonic() + timeout
    while True:
        states = []
        for stat in pathlib.Path(f"/proc/{pid}/task").glob("*/stat"):
            try:
                states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
            except (OSError, IndexError):
                continue  # a thread that just ended
        if states and all(state in {"T", "t"} for state in states):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} not stopped: thread states {sorted(set(states))}")
        time.sleep(0.01)


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
                format_storage_command(classpath, "TestClusterId0000000A", conf), check=True, capture_output=True
            )
        log = open(f"{self.folder}/kafka.log", "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            ["java", "-Xmx256m", "-Xms256m", "-cp", classpath, "kafka.Kafka", conf],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=60)

    def pause(self) -> None:
        """SIGSTOP, and return only once every thread of the broker is stopped: kill(2) returns before the threads
        stop, and a network thread still running for that moment could acknowledge a request sent after it."""
        assert self.proc is not None
        self.proc.send_signal(19)  # SIGSTOP
        wait_until_stopped(self.proc.pid)

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


def _pg_binary(name: str) -> str:
    import glob

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    binary = found[0] if found else shutil.which(name)
    assert binary, f"{name} is installed with the postgresql package by the local stack"
    return binary


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: under root, run it as the `postgres` system user (as infra/local/stack.py)."""
    import os

    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PostgresProcess:
    """A PostgreSQL cluster of the test's own (initdb into a temp folder, trust auth on loopback only), so pausing or
    stopping it harms no one else. Its processes share one process group: ``pause`` stops the postmaster and every
    backend, as a frozen host would."""

    port: int
    folder: str
    proc: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def data(self) -> str:
        return f"{self.folder}/data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        import os
        import pathlib

        pathlib.Path(self.data).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for path in (self.folder, self.data):
                shutil.chown(path, "postgres", "postgres")
        subprocess.run(
            _as_postgres_user(
                [
                    _pg_binary("initdb"),
                    "-D",
                    self.data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        log = open(f"{self.folder}/postgres.log", "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            _as_postgres_user(
                [
                    _pg_binary("postgres"),
                    "-D",
                    self.data,
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.data}",
                    "-c",
                    "max_connections=50",
                    "-c",
                    "fsync=off",
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so pause() reaches every backend
        )
        wait_for_port(self.port, timeout=30)
        deadline = time.monotonic() + 30
        ready = _pg_binary("pg_isready")
        while time.monotonic() < deadline:
            probe = [ready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
            if subprocess.run(probe, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError("PostgreSQL did not become ready")

    def _signal_group(self, sig: int) -> None:
        import os

        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def _cluster_pids(self) -> list[int]:
        """The postmaster and every process it forked (each backend runs in a session of its own, so a process
        group does not reach them)."""
        import os
        import pathlib

        postmaster = int(pathlib.Path(self.data, "postmaster.pid").read_text().split()[0])
        children = []
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children] if os.path.exists(f"/proc/{postmaster}") else children

    def _signal_cluster(self, sig: int) -> None:
        import os
        from contextlib import suppress

        for pid in self._cluster_pids():
            with suppress(ProcessLookupError):
                os.kill(pid, sig)

    def pause(self) -> None:
        self._signal_cluster(19)  # SIGSTOP: the postmaster first (no new backends), then every backend

    def resume(self) -> None:
        self._signal_cluster(18)  # SIGCONT
        self._signal_group(18)  # and runuser, which stops itself when it sees its child stopped

    def stop(self) -> None:
        from contextlib import suppress

        if self.proc is None:
            return
        self.resume()
        self._signal_group(3)  # SIGQUIT: immediate shutdown, shared memory released
        deadline = time.monotonic() + 20
        while self.proc.poll() is None and time.monotonic() < deadline:
            # runuser stops itself when it sees its child stopped (job control), so it may still be stopped from a
            # pause: continue it until it has reaped the server and exited.
            time.sleep(0.1)
            with suppress(ProcessLookupError):
                self._signal_group(18)
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                self._signal_group(9)
            self.proc.wait(timeout=10)
        self.proc = None


@contextmanager
def postgres_process() -> Iterator[PostgresProcess]:
    """A started, empty cluster; migrate it with ``infra.migrate.migrate_postgres(server.url)``."""
    folder = tempfile.mkdtemp(prefix="governance-test-postgres-")
    server = PostgresProcess(free_port(), folder)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
