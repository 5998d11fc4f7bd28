"""The reference server: a bare FastAPI endpoint under the same uvicorn settings and worker count as ``python -m
ingress`` (``ingress.__main__.serve``), answering a constant JSON object. Run as ``python -m bench.bare``."""

from __future__ import annotations

from fastapi import FastAPI

from ingress.__main__ import serve
from ingress.http.responses import JsonResponse

BARE_PATH = "/bare"
_CONSTANT = {"allowed": True, "risk_score": 0, "reason": "constant"}


def create_bare_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post(BARE_PATH)
    async def constant() -> JsonResponse:
        return JsonResponse(_CONSTANT)

    @app.get("/ready")
    async def ready() -> JsonResponse:
        return JsonResponse({"status": "ready"})

    return app


def main() -> None:
    serve("bench.bare:create_bare_app")  # API_WORKERS processes on API_PORT, as `python -m ingress` runs


if __name__ == "__main__":
    main()
