"""The Bearer schemes the OpenAPI document declares, so a client generated from it sends the key.

FastAPI documents a scheme on every operation whose dependencies include it (through routers too), so the auth
dependencies (``ingress.auth.deps``) take one of these as a ``Security`` parameter. They only document: the
verification stays in those dependencies, with their error shape, and the per-request cost is one no-op call.
"""

from __future__ import annotations

from fastapi.security import HTTPBearer

CUSTOMER_SCHEME = "CustomerKey"
ADMIN_SCHEME = "AdminKey"


class DocumentedBearer(HTTPBearer):
    """An HTTP Bearer scheme in the OpenAPI document; it reads nothing (the dependency that takes it verifies)."""

    async def __call__(self) -> None:  # type: ignore[override]  # reads no request: nothing to inject
        return None


CUSTOMER_KEY = DocumentedBearer(
    scheme_name=CUSTOMER_SCHEME,
    bearerFormat="sk_live_...",
    description="A customer's API key (POST /admin/keys creates one): `Authorization: Bearer sk_live_...`",
)
ADMIN_KEY = DocumentedBearer(
    scheme_name=ADMIN_SCHEME,
    bearerFormat="sk_admin_...",
    description="An operator's admin key (`govern admin bootstrap` creates the first): `Bearer sk_admin_...`",
)
