"""Run the audit read side: ``python -m ingress.audit`` on ``AUDIT_API_HOST:AUDIT_API_PORT`` (loopback, 8001).

One process: with the embedded ClickHouse it is the only one that may open it.

It lowers its own CPU priority first (``AUDIT_NICE``, default 10; the backtest's replay processes inherit it):
where it shares a host's cores with the check path (``make up``), a full export or a backtest of 100 000 events is
CPU-bound for seconds, and at equal priority the scheduler would give it half the cores the checks are waiting
for. Lowering a priority needs no privilege; what the read side gives up is only the CPU the check path uses.
"""

from __future__ import annotations

import logging
import os

from ingress.__main__ import serve
from ingress.settings import IngressSettings

log = logging.getLogger("ingress.audit")


def lower_priority(increment: int) -> None:
    """Add ``increment`` to this process's nice value (a no-op for 0; an OS that refuses is only logged)."""
    if increment <= 0:
        return
    try:
        os.nice(increment)
    except OSError as exc:
        log.warning("could not lower the read side's CPU priority by %d: %s", increment, exc)


def main() -> None:
    settings = IngressSettings()
    lower_priority(settings.audit_nice)
    serve("ingress.audit.app:create_app", host=settings.audit_api_host, port=settings.audit_api_port, workers=1)


if __name__ == "__main__":
    main()
