"""Policy backtesting: replay stored decisions' features through the same pure engine under candidate rules."""

from ingress.backtest.routes import router

__all__ = ["router"]
