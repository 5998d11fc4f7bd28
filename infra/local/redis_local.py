"""The local stack's Redis: Debian's ``redis-server`` (installed when missing) on 127.0.0.1:6379
(``GOVERNANCE_REDIS_PORT``), daemonized, with an append-only file in ``.state/redis``. Standard library only."""

from __future__ import annotations

import os
import shutil
import socket

from infra.local.daemon import HOST, LOGS, RUN, STATE, Service, StackError, pid_alive, port_open, run, terminate, wait
from infra.local.debian_packages import apt_install

REDIS_PORT = int(os.environ.get("GOVERNANCE_REDIS_PORT", "6379"))

REDIS_DIR = STATE / "redis"
REDIS_LOG = LOGS / "redis.log"
REDIS_PID = RUN / "redis.pid"


def healthy() -> bool:
    try:
        with socket.create_connection((HOST, REDIS_PORT), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start() -> None:
    if shutil.which("redis-server") is None:
        apt_install("redis-server")
    if pid_alive(REDIS_PID) and healthy():
        return
    if port_open(REDIS_PORT):
        raise StackError(f"Redis: {HOST}:{REDIS_PORT} is already taken by another process")
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    proc = run(
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
    if not wait(healthy, 15):
        raise StackError("Redis did not answer PING")


def stop() -> None:
    terminate(REDIS_PID)


SERVICE = Service("Redis", f"{HOST}:{REDIS_PORT}", REDIS_LOG, start, stop, healthy)
