"""Run the ingress API: ``python -m ingress``."""

from __future__ import annotations

import uvicorn

from infra.logs import configure_logging
from infra.sentry import init_sentry
from ingress.settings import IngressSettings


def serve(factory: str = "ingress.app:create_app") -> None:
    """Run ``factory`` (an import string naming an app factory) under uvicorn as the ingress deployable runs."""
    settings = IngressSettings()
    configure_logging("ingress", settings.log_level)
    init_sentry("ingress", settings)
    uvicorn.run(
        factory,
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_level=settings.log_level.lower(),
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )


def main() -> None:
    serve()


if __name__ == "__main__":
    main()
