"""Run the check path: ``python -m ingress`` (``API_WORKERS`` processes on ``API_HOST:API_PORT``).

With more than one worker, uvicorn's supervisor holds the listening socket, and SIGHUP to it is a rolling restart:
each worker's replacement is started and brought into service before the old one is retired, so no check is
refused while new code rolls in (docs/operators.md, "Restarting the check path")."""

from __future__ import annotations

import os
import shutil

import uvicorn

from infra.logs import configure_logging
from infra.sentry import init_sentry
from ingress.settings import IngressSettings


def _multiprocess_metrics(settings: IngressSettings, workers: int, name: str) -> None:
    """Several worker processes report their samples through ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's
    multiprocess mode): one is made, empty, under the state folder when the environment names none."""
    if workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    folder = settings.state_dir / "run" / f"metrics-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def serve(
    factory: str = "ingress.app:create_app", *, host: str | None = None, port: int | None = None, workers: int = 0
) -> None:
    """Run ``factory`` (an import string naming an app factory) under uvicorn as the ingress deployables run."""
    settings = IngressSettings()
    configure_logging("ingress", settings.log_level)
    init_sentry("ingress", settings)
    workers = workers or settings.api_workers
    _multiprocess_metrics(settings, workers, factory.partition(":")[0])
    uvicorn.run(
        factory,
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_worker_healthcheck=settings.worker_start_timeout_s,
    )


def main() -> None:
    serve()


if __name__ == "__main__":
    main()
