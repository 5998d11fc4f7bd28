"""The hot path: ``POST /v1/check`` and what it needs per request (config cache, rate limit, budgets, publisher,
receipts, signals, the scan lane). Nothing here reads ClickHouse or consumes Kafka."""
