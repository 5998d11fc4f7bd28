"""Analytics: the decision history and summaries read from ClickHouse, and the in-process audit writer."""

from ingress.analytics.lifecycle import start_audit, stop_audit
from ingress.analytics.routes import router as analytics_router

__all__ = ["analytics_router", "start_audit", "stop_audit"]
