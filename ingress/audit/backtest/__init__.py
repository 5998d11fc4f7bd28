"""Policy backtesting: replay stored decisions' features through the same pure engine under candidate rules.

``router`` is imported on first use: the replay's worker processes import ``ingress.audit.backtest.runner`` and must not
pay for the web stack (FastAPI, the analytics routes, the ClickHouse client) they never use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingress.audit.backtest.routes import router

__all__ = ["router"]


def __getattr__(name: str) -> Any:
    if name == "router":
        from ingress.audit.backtest.routes import router

        return router
    raise AttributeError(name)
