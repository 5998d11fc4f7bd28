"""The admin API: customers, their API keys and policies. Every route needs an admin key (``sk_admin_…``).

Routes only adapt HTTP to ``ingress.admin.tenancy``, which the operator CLI shares.
"""

from __future__ import annotations

from fastapi import APIRouter

from ingress.admin import customers, keys, policies

router = APIRouter()
router.include_router(customers.router)
router.include_router(keys.router)
router.include_router(policies.router)
router.include_router(policies.router, prefix="/admin")  # the same routes, beside the other admin ones

__all__ = ["router"]
