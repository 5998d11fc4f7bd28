"""Store ``count`` signed decisions of one customer straight into an embedded ClickHouse, then exit.

``python -m tests.support.seed_decisions <chdb dsn> <customer id> <count>``: run before the read side opens that
ClickHouse (one process may hold it), so a test can start the stack over 100 000 stored events in seconds.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta

from infra.clickhouse import build_clickhouse_client
from infra.migrate import migrate_clickhouse
from tests.support.audit import DATABASE, make_event, store_events

BATCH = 20_000


def seed(dsn: str, customer_id: uuid.UUID, count: int) -> None:
    client = build_clickhouse_client(dsn, database=DATABASE)
    migrate_clickhouse(client, DATABASE)
    start = datetime.now(UTC) - timedelta(hours=1)
    for first in range(0, count, BATCH):
        events = [
            make_event(
                customer_id, allowed=index % 7 != 0, risk=index % 90, decided_at=start + timedelta(milliseconds=index)
            )
            for index in range(first, min(first + BATCH, count))
        ]
        store_events(client, events, topic=f"seed.{first}")


if __name__ == "__main__":
    seed(sys.argv[1], uuid.UUID(sys.argv[2]), int(sys.argv[3]))
