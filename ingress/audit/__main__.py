"""Run the audit read side: ``python -m ingress.audit`` on ``AUDIT_API_HOST:AUDIT_API_PORT`` (loopback, 8001).

One process: with the embedded ClickHouse it is the only one that may open it."""

from __future__ import annotations

from ingress.__main__ import serve
from ingress.settings import IngressSettings


def main() -> None:
    settings = IngressSettings()
    serve("ingress.audit.app:create_app", host=settings.audit_api_host, port=settings.audit_api_port, workers=1)


if __name__ == "__main__":
    main()
