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

import subprocess
import sys
from pathlib import Path

# Each service lives in a module of its own beside this one (postgres_local, redis_local, kafka_local; what they
# share in daemon), and ``tools`` in tools.py. Run as a script, this folder is on sys.path but the checkout is
# not: put it there, so that the modules are imported as ``infra.local.*`` in both forms.
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from infra.local import kafka_local, postgres_local, redis_local
from infra.local.daemon import HOST, IS_ROOT, LOGS, ROOT, RUN, STATE, Service, StackError
from infra.local.kafka_local import (
    KAFKA_CONF,
    KAFKA_CONTROLLER_PORT,
    KAFKA_DATA,
    KAFKA_HEAP,
    KAFKA_HOME,
    KAFKA_LIBS,
    KAFKA_LOG,
    KAFKA_LOG4J,
    KAFKA_PID,
    KAFKA_POM,
    KAFKA_PORT,
    kafka_classpath,
)
from infra.local.postgres_local import (
    PG_DATA,
    PG_DATABASES,
    PG_LOG,
    PG_PASSWORD,
    PG_PID,
    PG_PORT,
    PG_USER,
)
from infra.local.redis_local import REDIS_DIR, REDIS_LOG, REDIS_PID, REDIS_PORT
from infra.local.tools import COMPOSE_PLUGIN, COMPOSE_VERSION, TOOLS, tools

# What this module offered before its services moved out; importable from here as before.
__all__ = [
    "COMPOSE_PLUGIN",
    "COMPOSE_VERSION",
    "HOST",
    "IS_ROOT",
    "KAFKA_CONF",
    "KAFKA_CONTROLLER_PORT",
    "KAFKA_DATA",
    "KAFKA_HEAP",
    "KAFKA_HOME",
    "KAFKA_LIBS",
    "KAFKA_LOG",
    "KAFKA_LOG4J",
    "KAFKA_PID",
    "KAFKA_POM",
    "KAFKA_PORT",
    "LOGS",
    "PG_DATA",
    "PG_DATABASES",
    "PG_LOG",
    "PG_PASSWORD",
    "PG_PID",
    "PG_PORT",
    "PG_USER",
    "REDIS_DIR",
    "REDIS_LOG",
    "REDIS_PID",
    "REDIS_PORT",
    "ROOT",
    "RUN",
    "SERVICES",
    "STATE",
    "TOOLS",
    "Service",
    "StackError",
    "down",
    "kafka_classpath",
    "main",
    "status",
    "tools",
    "up",
]

SERVICES: dict[str, Service] = {
    "postgres": postgres_local.SERVICE,
    "redis": redis_local.SERVICE,
    "kafka": kafka_local.SERVICE,
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
