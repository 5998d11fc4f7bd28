"""The dashboard's pages, one module per area; ``signed_in`` collects the routes that need a session."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ingress.dashboard.deps import require_csrf
from ingress.dashboard.pages import alerts, customers, home, keys, logs, metrics, policies, sign_in

signed_in = APIRouter(dependencies=[Depends(require_csrf)])
for module in (home, customers, keys, policies, logs, metrics, alerts):
    signed_in.include_router(module.router, prefix="/dashboard")
signed_in.include_router(sign_in.sign_out_router, prefix="/dashboard")

public = sign_in.router

__all__ = ["public", "signed_in"]
