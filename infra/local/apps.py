"""Start and stop the project's own processes in the background: the check path (``ingress``, ``API_WORKERS``
processes on :8000), the audit read side (``ingress-audit``, loopback :8001, which also hosts the audit writer on
the embedded ClickHouse), ``workers``, ``consumers`` and the dashboard (:3000).

A thin command line over ``infra/local/launcher.py``, which the tests and the benchmark start the same processes
with: each runs from the virtual environment with its log in ``.state/logs/`` and its pid in ``.state/run/``.
``up`` starts what is not running, waits for each process to answer, then for the ingress ``/ready`` to be green
(or fails naming the process and the tail of its log, stopping what it started).

``GOVERNANCE_STATE_DIR``, ``API_PORT``, ``AUDIT_API_PORT``, ``DASHBOARD_PORT``, ``WORKERS_METRICS_PORT`` and
``CONSUMERS_METRICS_PORT`` move the state folder and the ports (a second stack beside ``make up``; set its topics
and consumer groups too, or its audit writer joins the first one's group on the same topic);
``INGRESS_CPUS`` (a taskset CPU list, e.g. ``1``) pins the check processes; ``restart NAME`` stops one process and
starts it again; ``reload NAME`` is a rolling restart of a multi-worker process (``make reload``: the check path's
workers replaced one by one, its socket kept open, no check refused).

Usage: .venv/bin/python infra/local/apps.py up | down | status | restart NAME | reload NAME
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: infra.local.launcher (standard library only) from the checkout

from infra.local.launcher import Launcher, LaunchError, ports_from  # noqa: E402

STATE = Path(os.environ.get("GOVERNANCE_STATE_DIR", ROOT / ".state")).resolve()
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def launcher() -> Launcher:
    cpus = os.environ.get("INGRESS_CPUS", "")
    return Launcher(
        STATE,
        ports_from(os.environ),
        cpus={"ingress": cpus} if cpus else None,
        python=str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable,
    )


def up(apps: Launcher | None = None) -> int:
    apps = apps or launcher()
    try:
        apps.start()
        components = apps.until_ready()
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if started := [name for name in apps.apps if apps.process(name) is not None]:
            apps.stop(*started)  # what this invocation started; what ran before stays
        return 1
    print("ready: " + ", ".join(f"{name} {c['status']}" for name, c in components.items()))
    api, read_side, dashboard = apps.url("ingress"), apps.url("ingress-audit"), apps.url("dashboard")
    print(f"API        {api}  (docs {api}/docs, readiness {api}/ready, metrics {api}/metrics)")
    print(f"Read side  {read_side}  (loopback; the API forwards /logs, /v1/decisions, analytics, backtests to it)")
    print(f"Dashboard  {dashboard}/dashboard  (sign in with the admin key in {STATE / 'admin-key'})")
    return 0


def down() -> int:
    for name in launcher().stop():
        print(f"{name:<13} stopped")
    return 0


def restart(name: str) -> int:
    """Stop one process and start it again; like ``up``, return once ``/ready`` is green."""
    apps = launcher()
    if name not in apps.apps:
        print(f"error: no process named {name!r}; one of {', '.join(apps.apps)}", file=sys.stderr)
        return 2
    apps.stop(name)
    return up(apps)


def reload(name: str) -> int:
    """A rolling restart of one multi-worker process (the check path): every worker replaced, no check refused."""
    apps = launcher()
    if name not in apps.apps:
        print(f"error: no process named {name!r}; one of {', '.join(apps.apps)}", file=sys.stderr)
        return 2
    try:
        workers = apps.reload(name)
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{name:<13} reloaded: workers {' '.join(map(str, sorted(workers)))}")
    return 0


def status() -> int:
    apps = launcher()
    code = 0
    for name in apps.apps:
        pid = apps.pid(name)
        code |= 0 if pid else 1
        print(f"{name:<13} {'running pid ' + str(pid) if pid else 'stopped'}")
    return code


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "restart" and len(sys.argv) == 3:
        sys.exit(restart(sys.argv[2]))
    if command == "reload" and len(sys.argv) == 3:
        sys.exit(reload(sys.argv[2]))
    handlers = {"up": up, "down": down, "status": status}
    if command not in handlers:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(handlers[command]())
