"""The audit read side: the decision history, summaries, exports and backtests read from ClickHouse, served by a
process of its own (``python -m ingress.audit``); with the embedded ClickHouse it also hosts the audit writer.

Nothing is imported here: the backtest's replay workers import ``ingress.audit.backtest.runner`` alone."""
