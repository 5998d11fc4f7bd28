"""The stack ``make up`` runs, started for the benchmark beside any running one: every process started as ``make up``
starts it, by the same launcher (``infra/local/launcher.py``, under ``apps.py``): the read side with the embedded
ClickHouse and the audit writer, ``API_WORKERS`` check processes, consumers, workers, the dashboard; default
settings, with a state folder, free ports, a database and topics of the run's own. Besides: the bare FastAPI
reference under the same uvicorn settings, and CPU time of process trees read from ``/proc``.

Harness-only settings, none on the check path: the read bucket is raised so that the end-to-end poller is never
refused (``READ_RATE_LIMIT_CAPACITY``), the consumer groups are the run's own, and the check processes are pinned
with taskset (as ``INGRESS_CPUS`` pins them for ``make up``) away from the load generator when the machine has two
cores or more.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.environment import BenchEnvironment, free_port, pinned
from infra.local.launcher import Launcher, LaunchError, free_ports, tail
from infra.settings import PROJECT_ROOT

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a live process, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def process_tree(roots: list[int]) -> list[int]:
    """``roots`` and every live descendant (uvicorn workers, the scan lane, backtest workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents.setdefault(stat[0], []).append(int(entry.name))
    found: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in found or _stat(pid) is None:
            continue
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    return {pid: stat[1] for pid in pids if (stat := _stat(pid)) is not None}


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings by the processes alive at both (and all of a process born between)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


@dataclass
class Stack:
    """``make up``'s processes on the run's state folder and free ports, started by the launcher ``make up`` uses."""

    env: BenchEnvironment
    ingress_cpus: str | None
    ports: dict[str, int] = field(default_factory=free_ports)
    launcher: Launcher = field(init=False)

    def __post_init__(self) -> None:
        self.launcher = Launcher(
            self.env.state,
            self.ports,
            environ=self.environ(),
            cpus={"ingress": self.ingress_cpus} if self.ingress_cpus else None,
            python=sys.executable,
        )

    @property
    def url(self) -> str:
        return self.launcher.url("ingress")

    @property
    def read_side_url(self) -> str:
        return self.launcher.url("ingress-audit")

    def environ(self) -> dict[str, str]:
        env = self.env.server_env(self.ports["ingress"])
        env.pop("CLICKHOUSE_URL", None)  # the default: the embedded ClickHouse in the state folder
        env.update({"ALERTS_GROUP_ID": f"bench-alerts-{self.env.run_id}", "PYTHONDONTWRITEBYTECODE": "1"})
        env.pop("INGRESS_CPUS", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return env

    def _up(self, *restarted: str) -> None:
        """As ``apps.py up`` (or ``restart NAME``): start what is not running, then until ``/ready`` is green."""
        try:
            if restarted:
                self.launcher.stop(*restarted)
            self.launcher.start()
            self.launcher.until_ready()
        except LaunchError as exc:
            logs = self.logs()
            self.launcher.stop()  # the run's own stack: nothing of it is left running
            raise RuntimeError(f"{exc}\n{logs}") from exc

    async def start(self) -> None:
        await asyncio.to_thread(self._up)

    async def restart(self, name: str = "ingress") -> None:
        await asyncio.to_thread(self._up, name)

    async def reload(self, name: str = "ingress") -> None:
        """A rolling restart, as ``make reload``: every worker replaced, the socket kept open."""
        try:
            await asyncio.to_thread(self.launcher.reload, name)
        except LaunchError as exc:
            raise RuntimeError(f"{exc}\n{self.logs()}") from exc

    async def stop(self) -> None:
        await asyncio.to_thread(self.launcher.stop)

    def roots(self) -> dict[str, int]:
        """The pid of each process of the stack, by name."""
        return self.launcher.pids()

    def pids(self) -> list[int]:
        return process_tree(list(self.roots().values()))

    def cpu_by_process(self) -> dict[str, dict[int, float]]:
        """CPU seconds so far of each process of the stack (with its children), by name."""
        return {name: cpu_seconds(process_tree([pid])) for name, pid in self.roots().items()}

    def logs(self, chars: int = 1500) -> str:
        return "\n".join(f"--- {name}.log\n{tail(self.launcher.log_path(name), chars)}" for name in self.launcher.apps)


@dataclass
class BareServer:
    url: str
    proc: subprocess.Popen[bytes]

    def pids(self) -> list[int]:
        return process_tree([self.proc.pid])


@contextlib.contextmanager
def bare_server(env: BenchEnvironment, cpus: str | None) -> Iterator[BareServer]:
    """The bare FastAPI endpoint, ``API_WORKERS`` processes (the default) pinned as the check processes are."""
    port = free_port()
    environ = env.server_env(port)
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ["GOVERNANCE_STATE_DIR"] = str(env.state / "bare")
    command = [sys.executable, "-m", "bench.bare"]
    if cpus:
        command = pinned(command, int(cpus.split(",")[0]))
    log = (env.state / "bare.log").open("ab")
    proc = subprocess.Popen(command, env=environ, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    server = BareServer(f"http://127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bare server did not start: {(env.state / 'bare.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
