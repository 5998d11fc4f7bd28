"""The decisions table is described once (``infra/decisions_table.py``): the migrated table has exactly those
columns (and ``ingested_at``, which takes its default), and every reader's columns are among them."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from infra.decisions_table import COLUMNS, HISTORY_COLUMNS, run_query
from ingress.audit.export import CSV_COLUMNS, EVENT_PARTS
from ingress.settings import IngressSettings


def test_the_migrated_table_has_the_described_columns(clickhouse: Client, settings: IngressSettings) -> None:
    rows = run_query(clickhouse, f"DESCRIBE TABLE {settings.clickhouse_database}.decisions")
    names = [str(row[0]) for row in rows]
    assert set(names) - set(COLUMNS) == {"ingested_at"}
    assert [name for name in names if name in COLUMNS] == list(COLUMNS)  # insert order is table order


def test_readers_name_only_described_columns() -> None:
    assert set(HISTORY_COLUMNS) <= set(COLUMNS)
    assert set(CSV_COLUMNS) - set(EVENT_PARTS) <= set(HISTORY_COLUMNS)
