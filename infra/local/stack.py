"""The local stack: PostgreSQL, Redis and a single-node Apache Kafka (KRaft) on loopback.

Standard library only, so it runs before the virtual environment exists. Every service keeps its data, log and
pid file under one state folder (``.state/`` by default, ``GOVERNANCE_STATE_DIR`` to move it). Starting is
idempotent: a service whose process is alive and healthy is left alone. When a service cannot start, the
message names it, its address and its log file, everything this invocation started is stopped again, and the
exit status is non-zero.

Usage: python3 infra/local/stack.py up [postgres redis kafka] | down | status
       | tools [promtool prometheus chromium wrk jq node npm]
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("GOVERNANCE_STATE_DIR", ROOT / ".state")).resolve()
LOGS = STATE / "logs"
RUN = STATE / "run"
HOST = "127.0.0.1"

PG_PORT = int(os.environ.get("GOVERNANCE_PG_PORT", "5432"))
REDIS_PORT = int(os.environ.get("GOVERNANCE_REDIS_PORT", "6379"))
KAFKA_PORT = int(os.environ.get("GOVERNANCE_KAFKA_PORT", "9092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("GOVERNANCE_KAFKA_CONTROLLER_PORT", "9093"))
KAFKA_HEAP = os.environ.get("GOVERNANCE_KAFKA_HEAP", "512m")

PG_USER = "governance"
PG_PASSWORD = "governance"  # local loopback cluster only  # noqa: S105
PG_DATABASES = ("governance", "governance_test")

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class StackError(RuntimeError):
    """A service could not be installed or started; the message says which, where, and which log to read."""


@dataclass
class Service:
    name: str
    address: str
    log: Path
    start: Callable[[], None]
    stop: Callable[[], None]
    healthy: Callable[[], bool]


# --------------------------------------------------------------------------- helpers


def _run(cmd: list[str], *, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, text=True, capture_output=True, env=env)


def _port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _wait(predicate: Callable[[], bool], seconds: float, interval: float = 0.3) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _terminate(pid_file: Path, seconds: float = 20.0) -> None:
    pid = _pid_alive(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    if not _wait(lambda: _pid_alive(pid_file) is None, seconds):
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: _pid_alive(pid_file) is None, 5)
    pid_file.unlink(missing_ok=True)


def _apt_install(*packages: str) -> None:
    if shutil.which("apt-get") is None:
        raise StackError(f"cannot install {', '.join(packages)}: no apt-get on this machine; install them by hand")
    prefix = [] if IS_ROOT else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing {' '.join(packages)} from Debian's packages ...", flush=True)
    update = subprocess.run([*prefix, "apt-get", "update", "-qq"], check=False, text=True, capture_output=True, env=env)
    if update.returncode != 0:
        print(update.stderr[-2000:], file=sys.stderr)
    proc = subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=False,
        text=True,
        capture_output=True,
        env=env,
    )
    if proc.returncode != 0:
        raise StackError(f"apt-get install {' '.join(packages)} failed:\n{proc.stderr[-3000:]}")


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if found:
        return found[0]
    return shutil.which(name)


PG_DATA = STATE / "postgres"
PG_LOG = LOGS / "postgres.log"
PG_PID = PG_DATA / "postmaster.pid"


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: under root, run its tools as the `postgres` system user."""
    if IS_ROOT:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _pg_install() -> None:
    if _pg_bin("pg_ctl") is None or _pg_bin("initdb") is None:
        _apt_install("postgresql")
    if _pg_bin("pg_ctl") is None:
        raise StackError("PostgreSQL: pg_ctl not found after installing the postgresql package")


def _pg_healthy() -> bool:
    isready = _pg_bin("pg_isready")
    if isready is None:
        return _port_open(PG_PORT)
    return _run([isready, "-q", "-h", HOST, "-p", str(PG_PORT)], check=False).returncode == 0


def _pg_start() -> None:
    _pg_install()
    if IS_ROOT:
        # the data folder must be reachable by the postgres user: make the state folders traversable
        for folder in (STATE, LOGS):
            folder.chmod(0o755)
    if not (PG_DATA / "PG_VERSION").exists():
        PG_DATA.mkdir(parents=True, exist_ok=True)
        pwfile = STATE / ".pg-superuser"
        pwfile.write_text(PG_PASSWORD + "\n")
        if IS_ROOT:
            shutil.chown(PG_DATA, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        initdb = _pg_bin("initdb")
        assert initdb is not None  # noqa: S101
        proc = _run(
            _as_postgres(
                [
                    initdb,
                    "-D",
                    str(PG_DATA),
                    "-U",
                    "postgres",
                    "--pwfile",
                    str(pwfile),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            check=False,
        )
        pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise StackError(f"PostgreSQL: initdb failed in {PG_DATA}:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    if not PG_LOG.exists():
        PG_LOG.touch()
    if IS_ROOT:
        shutil.chown(PG_LOG, "postgres", "postgres")
    if _pid_alive(PG_PID) and _pg_healthy():
        _pg_bootstrap()
        return
    if _port_open(PG_PORT):
        raise StackError(f"PostgreSQL: {HOST}:{PG_PORT} is already taken by another process")
    pg_ctl = _pg_bin("pg_ctl")
    assert pg_ctl is not None  # noqa: S101
    opts = (
        f"-c listen_addresses={HOST} -c port={PG_PORT} -c unix_socket_directories={PG_DATA} "
        "-c max_connections=200 -c shared_buffers=128MB -c fsync=on"
    )
    proc = _run(
        _as_postgres([pg_ctl, "-D", str(PG_DATA), "-l", str(PG_LOG), "-o", opts, "-w", "-t", "60", "start"]),
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"PostgreSQL did not start: {proc.stdout[-800:]}{proc.stderr[-800:]}")
    if not _wait(_pg_healthy, 30):
        raise StackError("PostgreSQL did not become ready")
    _pg_bootstrap()


def _pg_bootstrap() -> None:
    """Create the application role and databases once; safe to repeat."""
    psql = _pg_bin("psql")
    assert psql is not None  # noqa: S101

    def sql(statement: str, db: str = "postgres") -> str:
        proc = _run(
            _as_postgres([psql, "-h", str(PG_DATA), "-p", str(PG_PORT), "-U", "postgres", "-d", db, "-tAc", statement]),
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"PostgreSQL: bootstrap statement failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    if sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PG_USER}'") != "1":
        sql(f"CREATE ROLE {PG_USER} LOGIN CREATEDB PASSWORD '{PG_PASSWORD}'")
    sql(f"ALTER ROLE {PG_USER} CREATEDB")
    for db in PG_DATABASES:
        if sql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
            sql(f"CREATE DATABASE {db} OWNER {PG_USER}")


def _pg_stop() -> None:
    pg_ctl = _pg_bin("pg_ctl")
    if pg_ctl is None or not (PG_DATA / "PG_VERSION").exists() or _pid_alive(PG_PID) is None:
        return
    _run(_as_postgres([pg_ctl, "-D", str(PG_DATA), "-m", "fast", "-w", "-t", "30", "stop"]), check=False)


# --------------------------------------------------------------------------- Redis

REDIS_DIR = STATE / "redis"
REDIS_LOG = LOGS / "redis.log"
REDIS_PID = RUN / "redis.pid"


def _redis_healthy() -> bool:
    try:
        with socket.create_connection((HOST, REDIS_PORT), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis_start() -> None:
    if shutil.which("redis-server") is None:
        _apt_install("redis-server")
    if _pid_alive(REDIS_PID) and _redis_healthy():
        return
    if _port_open(REDIS_PORT):
        raise StackError(f"Redis: {HOST}:{REDIS_PORT} is already taken by another process")
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    proc = _run(
        [
            "redis-server",
            "--bind",
            HOST,
            "--port",
            str(REDIS_PORT),
            "--daemonize",
            "yes",
            "--dir",
            str(REDIS_DIR),
            "--logfile",
            str(REDIS_LOG),
            "--pidfile",
            str(REDIS_PID),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--protected-mode",
            "yes",
        ],
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"Redis did not start: {proc.stderr.strip()}")
    if not _wait(_redis_healthy, 15):
        raise StackError("Redis did not answer PING")


def _redis_stop() -> None:
    _terminate(REDIS_PID)


# --------------------------------------------------------------------------- Kafka

KAFKA_HOME = STATE / "kafka"
KAFKA_LIBS = KAFKA_HOME / "libs"
KAFKA_DATA = KAFKA_HOME / "data"
KAFKA_CONF = KAFKA_HOME / "server.properties"
KAFKA_LOG = LOGS / "kafka.log"
KAFKA_PID = RUN / "kafka.pid"
KAFKA_POM = ROOT / "infra" / "local" / "kafka" / "pom.xml"
KAFKA_LOG4J = ROOT / "infra" / "local" / "kafka" / "log4j2.properties"


def _kafka_fetch() -> None:
    marker = KAFKA_LIBS / ".complete"
    if marker.exists() and marker.read_text() == KAFKA_POM.read_text():
        return
    if shutil.which("java") is None:
        _apt_install("openjdk-17-jre-headless")
    if shutil.which("mvn") is None:
        _apt_install("maven")
    print("fetching Apache Kafka jars from Maven Central ...", flush=True)
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    KAFKA_LIBS.mkdir(parents=True)
    proc = _run(
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
    _kafka_fetch()
    return f"{KAFKA_LIBS}/*"


def _kafka_config() -> str:
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


def _kafka_started() -> bool:
    if not _port_open(KAFKA_PORT):
        return False
    try:
        return "Kafka Server started" in KAFKA_LOG.read_text(errors="replace")
    except OSError:
        return False


def _kafka_healthy() -> bool:
    return _pid_alive(KAFKA_PID) is not None and _port_open(KAFKA_PORT)


def _kafka_start() -> None:
    classpath = kafka_classpath()
    if _kafka_healthy():
        return
    if _port_open(KAFKA_PORT) or _port_open(KAFKA_CONTROLLER_PORT):
        raise StackError(f"Kafka: {HOST}:{KAFKA_PORT} or :{KAFKA_CONTROLLER_PORT} is already taken by another process")
    KAFKA_HOME.mkdir(parents=True, exist_ok=True)
    KAFKA_CONF.write_text(_kafka_config())
    if not (KAFKA_DATA / "meta.properties").exists():
        cluster_id = _run(["java", "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"]).stdout.strip()
        cluster_id = cluster_id.splitlines()[-1] if cluster_id else str(uuid.uuid4())
        proc = _run(
            [
                "java",
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(KAFKA_CONF),
            ],
            check=False,
        )
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
    if not _wait(lambda: _kafka_started() or proc_.poll() is not None, 90):
        raise StackError("Kafka did not report 'Kafka Server started' within 90 s")
    if proc_.poll() is not None:
        raise StackError(f"Kafka exited with status {proc_.returncode}")


def _kafka_stop() -> None:
    _terminate(KAFKA_PID, seconds=30)


# --------------------------------------------------------------------------- commands

SERVICES: dict[str, Service] = {
    "postgres": Service("PostgreSQL", f"{HOST}:{PG_PORT}", PG_LOG, _pg_start, _pg_stop, _pg_healthy),
    "redis": Service("Redis", f"{HOST}:{REDIS_PORT}", REDIS_LOG, _redis_start, _redis_stop, _redis_healthy),
    "kafka": Service("Kafka", f"{HOST}:{KAFKA_PORT}", KAFKA_LOG, _kafka_start, _kafka_stop, _kafka_healthy),
}


def up(names: list[str]) -> int:
    for folder in (STATE, LOGS, RUN):
        folder.mkdir(parents=True, exist_ok=True)
    started: list[Service] = []
    for name in names:
        service = SERVICES[name]
        was_healthy = service.healthy()
        try:
            service.start()
        except (StackError, OSError, subprocess.SubprocessError) as exc:
            print(
                f"error: {service.name} could not start on {service.address}: {exc}\n       log file: {service.log}",
                file=sys.stderr,
            )
            service.stop()
            for other in reversed(started):
                other.stop()
            return 1
        if not was_healthy:
            started.append(service)
        print(f"{service.name:<10} up   {service.address:<18} log {service.log}", flush=True)
    return 0


def down(names: list[str]) -> int:
    for name in reversed(names):
        SERVICES[name].stop()
        print(f"{SERVICES[name].name:<10} down")
    return 0


def status(names: list[str]) -> int:
    code = 0
    for name in names:
        service = SERVICES[name]
        ok = service.healthy()
        code |= 0 if ok else 1
        print(f"{service.name:<10} {'up  ' if ok else 'down'} {service.address}")
    return code


# Tools the test suite and benchmarks use, by the binary that proves each is there.
TOOLS: dict[str, str] = {
    "promtool": "prometheus",  # checks the Prometheus rules and scrape config
    "prometheus": "prometheus",  # scrapes test processes: every dashboard panel and alert rule evaluated on real data
    "chromium": "chromium",  # dashboard browser tests (driven by Playwright, no browser download)
    "wrk": "wrk",  # HTTP load generator for benchmarks
    "jq": "jq",  # the docs' shell examples read JSON with it (tests/e2e/test_docs_examples.py runs them)
    "node": "nodejs",  # runs the official AsyncAPI parser (tests/e2e/test_contracts.py)
    "npm": "npm",  # installs that parser into .state/tools
}


COMPOSE_VERSION = "v2.40.3"
COMPOSE_PLUGIN = Path.home() / ".docker" / "cli-plugins" / "docker-compose"


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return _run(["docker", "compose", "version"], check=False).returncode == 0


def _install_compose_plugin() -> None:
    """Build Docker Compose from the Go module proxy as a docker CLI plugin, so `docker compose config` can
    validate docker-compose.yml on a machine whose docker client came without it (no engine is needed)."""
    if shutil.which("go") is None:
        raise StackError("docker compose: the plugin is missing and there is no Go toolchain to build it")
    build = STATE / "compose-build"
    build.mkdir(parents=True, exist_ok=True)
    (build / "go.mod").write_text("module local/composebuild\n\ngo 1.24\n")
    print(f"building docker compose {COMPOSE_VERSION} from the Go module proxy (a few minutes, once) ...", flush=True)
    env = dict(os.environ, GOFLAGS="-mod=mod")
    for cmd in (
        ["go", "get", f"github.com/docker/compose/v2/cmd@{COMPOSE_VERSION}"],
        ["go", "build", "-o", str(COMPOSE_PLUGIN), "github.com/docker/compose/v2/cmd"],
    ):
        proc = subprocess.run(cmd, cwd=build, check=False, text=True, capture_output=True, env=env)
        if proc.returncode != 0:
            raise StackError(f"docker compose: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")


def tools(names: list[str]) -> int:
    wanted = names or [*TOOLS, "compose"]
    missing = [TOOLS[n] for n in wanted if n in TOOLS and shutil.which(n) is None]
    try:
        if missing:
            _apt_install(*missing)
        if "compose" in wanted and shutil.which("docker") is not None and not _compose_available():
            _install_compose_plugin()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name in wanted:
        if name == "compose":
            print(f"{name:<10} {'docker compose' if _compose_available() else 'missing'}")
        else:
            print(f"{name:<10} {shutil.which(name) or 'missing'}")
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "tools":
        return tools(argv[1:])
    if not argv or argv[0] not in {"up", "down", "status", "stop", "start"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, names = argv[0], argv[1:] or list(SERVICES)
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(SERVICES)}", file=sys.stderr)
        return 2
    if command in {"up", "start"}:
        return up(names)
    if command in {"down", "stop"}:
        return down(names)
    return status(names)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
