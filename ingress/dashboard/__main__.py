"""Run the operator dashboard: ``python -m ingress.dashboard`` (http://127.0.0.1:3000/dashboard)."""

from __future__ import annotations

import uvicorn

from infra.logs import configure_logging
from ingress.dashboard.settings import DashboardSettings


def main() -> None:
    settings = DashboardSettings()
    configure_logging("dashboard", settings.log_level)
    uvicorn.run(
        "ingress.dashboard.app:create_app",
        factory=True,
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        log_level=settings.log_level.lower(),
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
