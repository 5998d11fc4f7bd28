"""Kafka consumers: the audit writer (decisions into ClickHouse) and alerting."""
