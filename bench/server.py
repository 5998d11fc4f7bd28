"""The server under test: the ingress app exactly as ``python -m ingress`` runs it, plus one constant endpoint.

``POST /bench/constant`` answers a constant JSON object from the same process, behind the same middleware, on
the same uvicorn settings and worker count: R1 divides ``/v1/check``'s rate by its rate. ``GET /bench/auth`` reads
the customer-key verifier's counters (cache hits and misses, bcrypt runs). Both exist only in this factory
(``bench.server:create_bench_app``), never in the deployed app.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from ingress.__main__ import serve
from ingress.app import create_app
from ingress.http.responses import JsonResponse

CONSTANT_PATH = "/bench/constant"
AUTH_PATH = "/bench/auth"
_CONSTANT = {"allowed": True, "risk_score": 0, "reason": "constant"}


def create_bench_app() -> FastAPI:
    app = create_app()

    @app.post(CONSTANT_PATH, include_in_schema=False)
    async def constant() -> JsonResponse:
        return JsonResponse(_CONSTANT)

    @app.get(AUTH_PATH, include_in_schema=False)
    async def auth_counters(request: Request) -> JsonResponse:
        verifier = request.app.state.auth.customers
        return JsonResponse(
            {
                "cache_hits": verifier.cache_hits,
                "cache_misses": verifier.cache_misses,
                "record_reloads": getattr(verifier, "record_reloads", 0),  # absent before the verifier kept secrets
                "bcrypt_calls": verifier.bcrypt_calls,
            }
        )

    return app


def main() -> None:
    serve("bench.server:create_bench_app")  # exactly as `python -m ingress` runs, with this factory


if __name__ == "__main__":
    main()
