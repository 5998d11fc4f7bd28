"""The stack ``make up`` runs, started for the benchmark beside any running one: every process as ``make up``
starts it (``infra/local/apps.py``: the read side with the embedded ClickHouse and the audit writer, ``API_WORKERS``
check processes, consumers, workers, the dashboard), default settings, with a state folder, ports, a database and
topics of the run's own. Besides: the bare FastAPI reference under the same uvicorn settings, and CPU time of
process trees read from ``/proc``.

Harness-only settings, none on the check path: the read bucket is raised so that the end-to-end poller is never
refused (``READ_RATE_LIMIT_CAPACITY``), the consumer groups are the run's own, and the check processes are pinned
(``INGRESS_CPUS``) away from the load generator when the machine has two cores or more.
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
from infra.receipt_keys import ReceiptKeyring
from infra.settings import PROJECT_ROOT

APPS = PROJECT_ROOT / "infra" / "local" / "apps.py"
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
    env: BenchEnvironment
    ingress_cpus: str | None
    api_port: int = field(default_factory=free_port)
    audit_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def read_side_url(self) -> str:
        return f"http://127.0.0.1:{self.audit_port}"

    def environ(self) -> dict[str, str]:
        env = self.env.server_env(self.api_port)
        env.pop("CLICKHOUSE_URL", None)  # the default: the embedded ClickHouse in the state folder
        env.update(
            {
                "AUDIT_API_PORT": str(self.audit_port),
                "DASHBOARD_PORT": str(self.dashboard_port),
                "ALERTS_GROUP_ID": f"bench-alerts-{self.env.run_id}",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        env.pop("INGRESS_CPUS", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if self.ingress_cpus:
            env["INGRESS_CPUS"] = self.ingress_cpus
        return env

    async def _apps(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(APPS),
            *args,
            env=self.environ(),
            cwd=PROJECT_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(
                f"apps.py {' '.join(args)} failed:\n{out.decode(errors='replace')[-3000:]}\n{self.logs()}"
            )

    async def start(self) -> None:
        self.env.state.mkdir(parents=True, exist_ok=True)
        # The signing key made before the processes start: two check processes and the read side making it at
        # once on a first start race on the file's rename (one of them then fails to start).
        ReceiptKeyring(self.env.state / "receipt-keys").signing_key()
        await self._apps("up")

    async def restart(self, name: str = "ingress") -> None:
        await self._apps("restart", name)

    async def stop(self) -> None:
        await self._apps("down")

    def roots(self) -> dict[str, int]:
        run = self.env.state / "run"
        found = {}
        for path in run.glob("*.pid"):
            with contextlib.suppress(OSError, ValueError):
                found[path.stem] = int(path.read_text())
        return found

    def pids(self) -> list[int]:
        return process_tree(list(self.roots().values()))

    def cpu_by_process(self) -> dict[str, dict[int, float]]:
        """CPU seconds so far of each process of the stack (with its children), by name."""
        return {name: cpu_seconds(process_tree([pid])) for name, pid in self.roots().items()}

    def logs(self, chars: int = 1500) -> str:
        parts = []
        for log in sorted((self.env.state / "logs").glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)


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
