"""Run the audit read side: ``python -m ingress.audit`` on ``AUDIT_API_HOST:AUDIT_API_PORT`` (loopback, 8001).

One process: with the embedded ClickHouse it is the only one that may open it.

It lowers its own CPU priority first (``AUDIT_NICE``, default 10; the backtest's replay processes inherit it,
``infra/priority.py``): where it shares a host's cores with the check path (``make up``), a full export or a
backtest of 100 000 events is CPU-bound for seconds, and at equal priority the scheduler would give it half the
cores the checks are waiting for.
"""

from __future__ import annotations

from infra.priority import lower_cpu_priority
from ingress.__main__ import serve
from ingress.settings import IngressSettings


def main() -> None:
    settings = IngressSettings()
    lower_cpu_priority(settings.audit_nice, "audit read side")
    serve("ingress.audit.app:create_app", host=settings.audit_api_host, port=settings.audit_api_port, workers=1)


if __name__ == "__main__":
    main()
