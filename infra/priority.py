"""CPU priority by role: the check path first.

On a host where every process of the project shares a few cores (``make up``), what customers wait on is the check
path; the audit read side (exports, backtests), the consumers (the audit writer, alerting) and the workers (the
spool relay, webhooks) are throughput work that may run later by a few milliseconds. Each of those lowers its own
priority at start with a nice increment (``AUDIT_NICE``, ``BACKGROUND_NICE``), so that when the cores are
contended the scheduler gives the check path its share first. When they are not, nothing changes: a niced process
still gets every idle cycle. Lowering a priority needs no privilege; the check path itself never changes its own.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("infra.priority")


def lower_cpu_priority(increment: int, role: str) -> None:
    """Add ``increment`` (0-19) to this process's nice value; children started later inherit it."""
    if increment <= 0:
        return
    try:
        os.nice(increment)
    except OSError as exc:  # a sandbox may refuse even this; the process runs, only at its old priority
        log.warning("could not lower the %s's CPU priority by %d: %s", role, increment, exc)
