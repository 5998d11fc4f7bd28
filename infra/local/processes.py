"""Looking at and signalling the project's processes from outside, standard library only (the launcher's part):
whether a pid runs a given module, whether a child exited, signalling a process group, and a multi-worker uvicorn
process's workers and its rolling restart (SIGHUP to the supervisor, which keeps the listening socket and
replaces each worker only once the replacement serves: ``ingress/__main__.py``).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path


def worker_pids(supervisor: int) -> set[int]:
    """The supervisor's worker processes: the children multiprocessing spawned (not its resource tracker)."""
    found: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{supervisor}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                found.add(int(child))
    return found


def rolling_restart(supervisor: int, timeout_s: float = 180.0) -> set[int]:
    """SIGHUP ``supervisor`` and return the new worker pids once every old worker is replaced. Raises
    ``TimeoutError`` when that does not happen within ``timeout_s`` (the supervisor's log says why; a replacement
    that did not serve in time leaves the old worker serving) and ``ValueError`` for a process without workers."""
    before = worker_pids(supervisor)
    if not before:
        raise ValueError(f"process {supervisor} has no worker processes (a single worker has no supervisor)")
    os.kill(supervisor, signal.SIGHUP)
    deadline = time.monotonic() + timeout_s
    while True:
        now = worker_pids(supervisor)
        if len(now) >= len(before) and not now & before:
            return now
        if time.monotonic() > deadline:
            replaced = f"workers {sorted(before)} were not all replaced within {timeout_s:.0f} s"
            raise TimeoutError(f"{replaced}: {sorted(now)}")
        time.sleep(0.2)


def runs_module(pid: int, module: str) -> bool:
    """Whether ``pid`` is a live ``python -m <module>`` (a stale pid file may name a pid reused since)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(a == b"-m" and b == module.encode() for a, b in itertools.pairwise(argv))


def exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether a child has exited, without reaping it: until it is reaped its pid, and so its process group id,
    cannot be taken by another process, so the group can still be signalled safely."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere: no pid of ours any more (poll records it)
        proc.poll()
        return True


def killpg(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, sig)
