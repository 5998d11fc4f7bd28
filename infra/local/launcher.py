"""Start, watch and stop the project's own processes: one launcher for ``make up`` (``infra/local/apps.py``), the
tests (``tests/support/live_server.py``) and the benchmark (``bench/stack.py``), so each starts them the same way.

A :class:`Launcher` runs a set of :class:`App` on one state folder: ``python -m <module>`` from the project root,
in a session of its own (so stopping it reaches every process it forked), stdin closed, its output appended to
``<state>/logs/<name>.log`` and its pid in ``<state>/run/<name>.pid``. Each app listens on one port, told through
its own variable (``API_PORT``, ``AUDIT_API_PORT``, ``DASHBOARD_PORT``, ``METRICS_PORT``), and the launcher wires the
others to it (``AUDIT_API_URL`` for the check path, ``API_URL`` for the dashboard). An app is ready when its
``/health`` answers 200 (the metrics endpoints of workers and consumers: when the port takes a connection).

An app whose pid file names a live process of its module (another invocation started it: ``make up`` then
``apps.py restart``) is left running and counted as started; a new launcher on the same state folder takes over
everything kept there (spool, embedded ClickHouse, receipt keys) once the previous processes are stopped.

Standard library only: ``apps.py`` imports it before anything of the project.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from infra.local.processes import exited, killpg, rolling_restart, runs_module

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


@dataclass(frozen=True)
class App:
    """One of the project's processes: ``python -m <module> <args>``, listening on the port its ``port_variable``
    names; ready when ``probe_path`` answers 200 there (no path: when the port takes a connection)."""

    name: str
    module: str
    port_variable: str
    probe_path: str = "/health"
    args: tuple[str, ...] = ()

    @property
    def command(self) -> list[str]:
        return ["-m", self.module, *self.args]


# ``make up``'s processes in start order (stopped in the reverse order).
APPS: dict[str, App] = {
    app.name: app
    for app in (
        # the read side first: it opens the embedded ClickHouse (and hosts the audit writer), which ingress never does
        App("ingress-audit", "ingress.audit", "AUDIT_API_PORT"),
        App("ingress", "ingress", "API_PORT"),
        App("workers", "workers", "METRICS_PORT", probe_path=""),
        App("consumers", "consumers", "METRICS_PORT", probe_path=""),
        App("dashboard", "ingress.dashboard", "DASHBOARD_PORT"),
    )
}

DEFAULT_PORTS: dict[str, int] = {
    "ingress": 8000,
    "ingress-audit": 8001,
    "dashboard": 3000,
    "workers": 9102,  # infra.pipeline_metrics.WORKERS_METRICS_PORT
    "consumers": 9101,  # infra.pipeline_metrics.CONSUMERS_METRICS_PORT
}

# The variables that move ``make up``'s ports (``ports_from``).
PORT_VARIABLES: dict[str, str] = {
    "ingress": "API_PORT",
    "ingress-audit": "AUDIT_API_PORT",
    "dashboard": "DASHBOARD_PORT",
    "workers": "WORKERS_METRICS_PORT",
    "consumers": "CONSUMERS_METRICS_PORT",
}


class LaunchError(RuntimeError):
    """A process exited or was not ready in time; the message names it and ends with the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(names: Iterable[str] = APPS) -> dict[str, int]:
    """A free loopback port for each app named (every app by default)."""
    return {name: free_port() for name in names}


def ports_from(environ: Mapping[str, str]) -> dict[str, int]:
    """``make up``'s ports, each moved by its variable in ``PORT_VARIABLES``."""
    return {name: int(environ.get(PORT_VARIABLES[name]) or port) for name, port in DEFAULT_PORTS.items()}


def tail(path: Path, chars: int = 3000) -> str:
    """The last ``chars`` characters of a log (empty when there is none yet)."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - chars * 4))
            return log.read().decode(errors="replace")[-chars:]
    except OSError:
        return ""


# Loopback probes never go through a proxy named in the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, timeout: float) -> tuple[int, str]:
    """(status, body) of a GET; status 0 when nothing answered."""
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


def _listens(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class Launcher:
    """The project's processes on one state folder.

    ``ports`` maps each app's name to its port (``free_ports()``, ``ports_from(os.environ)``); ``environ`` is the
    environment every process starts from (``os.environ`` by default; ``ENVIRONMENT`` is ``local`` unless it says
    otherwise, as unset means production); ``overrides`` are applied after the launcher's own wiring. ``cpus`` pins
    an app to a taskset CPU list (``{"ingress": "1"}``). ``apps`` replaces the set (another module, arguments)."""

    def __init__(
        self,
        state: Path,
        ports: Mapping[str, int],
        *,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
        apps: Iterable[App] = APPS.values(),
        cpus: Mapping[str, str] | None = None,
        python: str = sys.executable,
        start_timeout_s: float = 90.0,
        stop_timeout_s: float = 20.0,
    ) -> None:
        self.state = Path(state).resolve()
        self.logs = self.state / "logs"
        self.run = self.state / "run"
        self.apps = {app.name: app for app in apps}
        self.ports = dict(ports)
        self.cpus = dict(cpus or {})
        self.python = python
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.env = self._environment(os.environ if environ is None else environ, overrides or {})
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def _environment(self, environ: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
        """What every process of the set starts with: the state folder and where the others listen."""
        env = {**environ, "ENVIRONMENT": environ.get("ENVIRONMENT") or "local", "GOVERNANCE_STATE_DIR": str(self.state)}
        if "ingress" in self.ports:
            env.update(API_PORT=str(self.ports["ingress"]), API_URL=self.url("ingress"))
        if "ingress-audit" in self.ports:
            env.update(AUDIT_API_PORT=str(self.ports["ingress-audit"]), AUDIT_API_URL=self.url("ingress-audit"))
        if "dashboard" in self.ports:
            env["DASHBOARD_PORT"] = str(self.ports["dashboard"])
        env.update(overrides)
        return env

    # -- what is known about each app ---------------------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}"

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def log(self, name: str) -> str:
        try:
            return self.log_path(name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def environ(self, name: str) -> dict[str, str]:
        """The environment ``name`` runs with: the set's, and its own port."""
        app = self.apps[name]
        return {**self.env, app.port_variable: str(self.ports[name])}

    def process(self, name: str) -> subprocess.Popen[bytes] | None:
        """The process this launcher started for ``name`` (None for one another invocation started)."""
        return self._children.get(name)

    def pid(self, name: str) -> int | None:
        """The pid of ``name`` while it runs (started here, or named by its pid file)."""
        child = self._children.get(name)
        if child is not None:
            return None if exited(child) else child.pid
        try:
            pid = int((self.run / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if runs_module(pid, self.apps[name].module) else None

    def pids(self) -> dict[str, int]:
        """Every running app's pid, by name."""
        return {name: pid for name in self.apps if (pid := self.pid(name)) is not None}

    # -- start, stop ----------------------------------------------------------------------------------------------

    def _spawn(self, app: App) -> None:
        command = [self.python, *app.command]
        taskset = shutil.which("taskset")
        if self.cpus.get(app.name) and taskset:
            command = [taskset, "-c", self.cpus[app.name], *command]
        with self.log_path(app.name).open("ab") as log:
            child = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.environ(app.name),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopping it reaches every process it forked
            )
        self._children[app.name] = child
        (self.run / f"{app.name}.pid").write_text(str(child.pid))

    def _probe(self, name: str) -> str:
        app = self.apps[name]
        if app.probe_path:
            return f"GET {self.url(name)}{app.probe_path} did not answer 200"
        return f"nothing listens on {HOST}:{self.ports[name]}"

    def _ready(self, app: App) -> bool:
        port = self.ports[app.name]
        if not app.probe_path:
            return _listens(port)
        return _get(f"{self.url(app.name)}{app.probe_path}", timeout=1.0)[0] == 200

    def _failure(self, name: str, what: str) -> LaunchError:
        return LaunchError(f"{name} {what}; the tail of {self.log_path(name)}:\n{tail(self.log_path(name))}")

    def _check_alive(self, names: Iterable[str]) -> None:
        for name in names:
            child = self._children.get(name)
            if child is not None and child.poll() is not None:
                raise self._failure(name, f"exited with status {child.returncode}")

    def _named(self, names: tuple[str, ...]) -> list[str]:
        """The apps named, in the set's order (every app when none is named)."""
        if unknown := set(names) - set(self.apps):
            raise KeyError(f"no app named {', '.join(sorted(unknown))}; one of {', '.join(self.apps)}")
        return [name for name in self.apps if not names or name in names]

    def start(self, *names: str) -> list[str]:
        """Start the apps named (all by default) that are not running, in the set's order, and return once each
        is ready; returns the names started. Raises ``LaunchError`` when one exits or is not ready within
        ``start_timeout_s``, after stopping what this call started."""
        wanted = self._named(names)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        started = [name for name in wanted if self.pid(name) is None]
        try:
            for name in started:
                self._spawn(self.apps[name])
            pending = list(started)
            deadline = time.monotonic() + self.start_timeout_s
            while pending:
                self._check_alive(started)
                pending = [name for name in pending if not self._ready(self.apps[name])]
                if pending and time.monotonic() > deadline:
                    raise self._failure(
                        pending[0], f"not ready within {self.start_timeout_s:.0f} s ({self._probe(pending[0])})"
                    )
                if pending:
                    time.sleep(0.2)
        except BaseException:
            if started:
                self.stop(*started)
            raise
        return started

    def _stop_child(self, child: subprocess.Popen[bytes]) -> None:
        if not exited(child):
            killpg(child.pid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout_s
            while not exited(child) and time.monotonic() < deadline:
                time.sleep(0.05)
        if child.returncode is None:
            killpg(child.pid, signal.SIGKILL)  # the leader if it did not stop, and anything it left in its group
            child.wait()

    def _stop_pid(self, pid: int, module: str) -> None:
        """One another invocation started (not our child: its parent reaps it)."""
        killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        while runs_module(pid, module) and time.monotonic() < deadline:
            time.sleep(0.05)
        if runs_module(pid, module):
            killpg(pid, signal.SIGKILL)

    def stop(self, *names: str) -> list[str]:
        """SIGTERM each app named (all by default) that runs, in the reverse order, SIGKILL after
        ``stop_timeout_s``; returns the names that were running."""
        stopped = []
        for name in reversed(self._named(names)):
            child = self._children.pop(name, None)
            if child is not None:
                running = not exited(child)
                self._stop_child(child)
            elif (pid := self.pid(name)) is not None:
                running = True
                self._stop_pid(pid, self.apps[name].module)
            else:
                running = False
            (self.run / f"{name}.pid").unlink(missing_ok=True)
            if running:
                stopped.append(name)
        return stopped

    def restart(self, name: str) -> None:
        """Stop one app and start it again (it takes over what it keeps in the state folder)."""
        self._named((name,))
        self.stop(name)
        self.start(name)

    def reload(self, name: str, timeout_s: float = 180.0) -> set[int]:
        """A rolling restart of a multi-worker app (SIGHUP: each worker replaced once its replacement serves, the
        socket kept open); returns the new worker pids. Raises ``LaunchError`` when it is not running or the
        workers are not all replaced within ``timeout_s``."""
        pid = self.pid(name)
        if pid is None:
            raise self._failure(name, "is not running")
        try:
            return rolling_restart(pid, timeout_s)
        except (TimeoutError, ValueError) as exc:
            raise self._failure(name, f"was not reloaded: {exc}") from None

    def until_ready(self, timeout_s: float = 90.0) -> dict[str, dict[str, object]]:
        """Until the check path's ``/ready`` reports every component ready (what ``make up`` waits for); returns
        the components. Raises ``LaunchError`` when a process of the set exits or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive(self._children)
            status, body = _get(f"{self.url('ingress')}/ready", timeout=2.0)
            with suppress(ValueError, KeyError, TypeError):
                answer = json.loads(body)
                if status == 200 and answer["status"] == "ready":
                    components: dict[str, dict[str, object]] = answer["components"]
                    return components
            if time.monotonic() > deadline:
                raise self._failure("ingress", f"/ready did not report ready within {timeout_s:.0f} s: {body[:2000]}")
            time.sleep(0.5)

    def __enter__(self) -> Launcher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """Stops what this launcher started (not what it found running)."""
        if self._children:
            self.stop(*self._children)
