"""Alerting's admin surface: alert rules, alerts and webhook endpoints (``routes.py``), over data functions
(``rules.py``, ``alerts.py``, ``webhooks.py``) that the ``govern alerts`` CLI shares."""

from __future__ import annotations

from fastapi import APIRouter

from ingress.admin.alerting.routes import alerts_router, rules_router, webhooks_router

router = APIRouter()
router.include_router(rules_router)
router.include_router(alerts_router)
router.include_router(webhooks_router)

__all__ = ["router"]
