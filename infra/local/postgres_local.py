"""The local stack's PostgreSQL: Debian's ``postgresql`` package (installed when missing), a cluster of our own
in ``.state/postgres`` on 127.0.0.1:5432 (``GOVERNANCE_PG_PORT``), run as the ``postgres`` system user when
started by root, with the application role and databases created once. Standard library only."""

from __future__ import annotations

import glob
import os
import shutil

from infra.local.daemon import HOST, IS_ROOT, LOGS, STATE, Service, StackError, pid_alive, port_open, run, wait
from infra.local.debian_packages import apt_install

PG_PORT = int(os.environ.get("GOVERNANCE_PG_PORT", "5432"))
PG_USER = "governance"
PG_PASSWORD = "governance"  # local loopback cluster only  # noqa: S105
PG_DATABASES = ("governance", "governance_test")
PG_DATA = STATE / "postgres"
PG_LOG = LOGS / "postgres.log"
PG_PID = PG_DATA / "postmaster.pid"


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if found:
        return found[0]
    return shutil.which(name)


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: under root, run its tools as the `postgres` system user."""
    if IS_ROOT:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _install() -> None:
    if _bin("pg_ctl") is None or _bin("initdb") is None:
        apt_install("postgresql")
    if _bin("pg_ctl") is None:
        raise StackError("PostgreSQL: pg_ctl not found after installing the postgresql package")


def healthy() -> bool:
    isready = _bin("pg_isready")
    if isready is None:
        return port_open(PG_PORT)
    return run([isready, "-q", "-h", HOST, "-p", str(PG_PORT)], check=False).returncode == 0


def start() -> None:
    _install()
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
        initdb = _bin("initdb")
        assert initdb is not None  # noqa: S101
        proc = run(
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
    if pid_alive(PG_PID) and healthy():
        _bootstrap()
        return
    if port_open(PG_PORT):
        raise StackError(f"PostgreSQL: {HOST}:{PG_PORT} is already taken by another process")
    pg_ctl = _bin("pg_ctl")
    assert pg_ctl is not None  # noqa: S101
    opts = (
        f"-c listen_addresses={HOST} -c port={PG_PORT} -c unix_socket_directories={PG_DATA} "
        "-c max_connections=200 -c shared_buffers=128MB -c fsync=on"
    )
    proc = run(
        _as_postgres([pg_ctl, "-D", str(PG_DATA), "-l", str(PG_LOG), "-o", opts, "-w", "-t", "60", "start"]),
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"PostgreSQL did not start: {proc.stdout[-800:]}{proc.stderr[-800:]}")
    if not wait(healthy, 30):
        raise StackError("PostgreSQL did not become ready")
    _bootstrap()


def _bootstrap() -> None:
    """Create the application role and databases once; safe to repeat."""
    psql = _bin("psql")
    assert psql is not None  # noqa: S101

    def sql(statement: str, db: str = "postgres") -> str:
        proc = run(
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


def stop() -> None:
    pg_ctl = _bin("pg_ctl")
    if pg_ctl is None or not (PG_DATA / "PG_VERSION").exists() or pid_alive(PG_PID) is None:
        return
    run(_as_postgres([pg_ctl, "-D", str(PG_DATA), "-m", "fast", "-w", "-t", "30", "stop"]), check=False)


SERVICE = Service("PostgreSQL", f"{HOST}:{PG_PORT}", PG_LOG, start, stop, healthy)
