"""What the local services (``stack.py``) share: the state folder every one keeps its data, log and pid file
under, the loopback address, how a service describes itself (``Service``), and running, waiting for and stopping
their processes. Standard library only, like the rest of ``stack.py``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("GOVERNANCE_STATE_DIR", ROOT / ".state")).resolve()
LOGS = STATE / "logs"
RUN = STATE / "run"
HOST = "127.0.0.1"

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


def run(cmd: list[str], *, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, text=True, capture_output=True, env=env)


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid_file: Path) -> int | None:
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


def wait(predicate: Callable[[], bool], seconds: float, interval: float = 0.3) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def terminate(pid_file: Path, seconds: float = 20.0) -> None:
    pid = pid_alive(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    if not wait(lambda: pid_alive(pid_file) is None, seconds):
        os.kill(pid, signal.SIGKILL)
        wait(lambda: pid_alive(pid_file) is None, 5)
    pid_file.unlink(missing_ok=True)
