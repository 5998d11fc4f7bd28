"""Adapters, settings and everything operational: database pools, Redis, Kafka, ClickHouse, migrations, stack."""
