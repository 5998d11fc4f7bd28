"""Start and stop the project's own processes in the background: the check path (``ingress``, ``API_WORKERS``
processes on :8000), the audit read side (``ingress-audit``, loopback :8001, which also hosts the audit writer on
the embedded ClickHouse), ``consumers``, ``workers`` and the dashboard (:3000).

Each runs from the virtual environment with its log in ``.state/logs/`` and its pid in ``.state/run/``.
``up`` returns once the ingress ``/ready`` is green (or fails naming the process and its log).

``GOVERNANCE_STATE_DIR``, ``API_PORT``, ``AUDIT_API_PORT`` and ``DASHBOARD_PORT`` move the state folder and the
ports (the benchmark runs a second stack beside ``make up`` this way); ``INGRESS_CPUS`` (a taskset CPU list, e.g.
``1``) pins the check processes; ``restart NAME`` stops one process and starts it again.

Usage: .venv/bin/python infra/local/apps.py up | down | status | restart NAME
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("GOVERNANCE_STATE_DIR", ROOT / ".state")).resolve()
LOGS = STATE / "logs"
RUN = STATE / "run"
PYTHON = ROOT / ".venv" / "bin" / "python"
API = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"


@dataclass(frozen=True)
class App:
    name: str
    module: str
    url: str = ""


AUDIT_API = f"http://127.0.0.1:{os.environ.get('AUDIT_API_PORT', '8001')}"
DASHBOARD = f"http://127.0.0.1:{os.environ.get('DASHBOARD_PORT', '3000')}/dashboard"

APPS: list[App] = [
    # the read side first: it opens the embedded ClickHouse, which ingress never does
    App("ingress-audit", "ingress.audit", f"{AUDIT_API}/ready"),
    App("ingress", "ingress", f"{API}/docs"),
    App("workers", "workers"),
    App("consumers", "consumers"),
    App("dashboard", "ingress.dashboard", DASHBOARD),
]


def _pid(app: App) -> int | None:
    try:
        pid = int((RUN / f"{app.name}.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _ready(timeout: float = 2.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(f"{API}/ready", timeout=timeout) as resp:  # noqa: S310 - loopback URL
            body = resp.read().decode()
            return resp.status == 200 and json.loads(body)["status"] == "ready", body
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode(errors="replace")
    except OSError as exc:
        return False, str(exc)


def up() -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    RUN.mkdir(parents=True, exist_ok=True)
    for app in APPS:
        if _pid(app):
            continue
        log = (LOGS / f"{app.name}.log").open("ab")
        command = [str(PYTHON), "-m", app.module]
        cpus = os.environ.get("INGRESS_CPUS", "")
        taskset = shutil.which("taskset")
        if app.name == "ingress" and cpus and taskset:
            command = [taskset, "-c", cpus, *command]
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "ENVIRONMENT": os.environ.get("ENVIRONMENT", "local")},  # unset means production
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        (RUN / f"{app.name}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 90
    body = ""
    while time.monotonic() < deadline:
        dead = [app for app in APPS if _pid(app) is None]
        if dead:
            for app in dead:
                print(f"error: {app.name} exited; see {LOGS / (app.name + '.log')}", file=sys.stderr)
            down()
            return 1
        ok, body = _ready()
        if ok:
            break
        time.sleep(0.5)
    else:
        print(
            f"error: {API}/ready did not turn green within 90 s: {body}\n       see {LOGS / 'ingress.log'}",
            file=sys.stderr,
        )
        down()
        return 1
    components = json.loads(body)["components"]
    print("ready: " + ", ".join(f"{name} {c['status']}" for name, c in components.items()))
    print(f"API        {API}  (docs {API}/docs, readiness {API}/ready, metrics {API}/metrics)")
    print(f"Read side  {AUDIT_API}  (loopback; :8000 forwards /logs, /v1/decisions, analytics, backtests to it)")
    print(f"Dashboard  {DASHBOARD}  (sign in with the admin key in .state/admin-key)")
    return 0


def _stop(app: App) -> None:
    pid = _pid(app)
    if pid is None:
        return
    os.killpg(pid, signal.SIGTERM)
    for _ in range(100):
        if _pid(app) is None:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    (RUN / f"{app.name}.pid").unlink(missing_ok=True)
    print(f"{app.name:<10} stopped")


def down() -> int:
    for app in reversed(APPS):
        _stop(app)
    return 0


def restart(name: str) -> int:
    """Stop one process and start it again (``up`` starts what is not running and waits for ``/ready``)."""
    found = [app for app in APPS if app.name == name]
    if not found:
        print(f"error: no process named {name!r}; one of {', '.join(a.name for a in APPS)}", file=sys.stderr)
        return 2
    _stop(found[0])
    return up()


def status() -> int:
    code = 0
    for app in APPS:
        pid = _pid(app)
        code |= 0 if pid else 1
        print(f"{app.name:<10} {'running pid ' + str(pid) if pid else 'stopped'}")
    return code


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "restart" and len(sys.argv) == 3:
        sys.exit(restart(sys.argv[2]))
    handlers = {"up": up, "down": down, "status": status}
    if command not in handlers:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(handlers[command]())
