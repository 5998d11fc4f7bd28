"""``python -m tests.reliability.faulty_read_side``: the real audit read side (``python -m ingress.audit``, which hosts
the audit writer on the embedded ClickHouse) with faults injected at its ClickHouse client, switched on and off by
the test through files named in the environment:

- ``FAULT_CLICKHOUSE_DOWN_FILE``: while the file exists, every insert of the audit writer raises ClickHouse's own
  ``DatabaseError`` before touching the table, as a server refusing writes would (reads still work);
- ``FAULT_EXIT_BEFORE_COMMIT_FILE``: once the file exists, the audit writer's next offset commit, which comes right
  after its insert, ends the process on the spot (``os._exit``: no flush, no commit, no goodbye to the group), and
  ``<file>.fired`` records how many rows the writer had inserted by then.

Nothing of this is in the product: a test-side launcher patches the two seams and then runs
``ingress.audit.__main__``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.exceptions import DatabaseError

from consumers.audit.writer import AuditWriter
from infra.decisions_table import DecisionStore
from ingress.audit.__main__ import main


def _install() -> None:
    down = os.environ.get("FAULT_CLICKHOUSE_DOWN_FILE")
    exit_before_commit = os.environ.get("FAULT_EXIT_BEFORE_COMMIT_FILE")
    if down:
        real_insert = DecisionStore.insert_sync

        def failing_insert(self: DecisionStore, rows: Any, token: str) -> None:
            if Path(down).exists():
                raise DatabaseError("Code: 242. DB::Exception: Table is in readonly mode (injected by the test)")
            real_insert(self, rows, token)

        DecisionStore.insert_sync = failing_insert  # type: ignore[method-assign]
    if exit_before_commit:
        real_commit = AuditWriter._commit

        def die_if_told(rows_written: int) -> None:
            if Path(exit_before_commit).exists():
                Path(exit_before_commit + ".fired").write_text(str(rows_written))
                os._exit(137)

        async def commit_or_die(self: AuditWriter, offsets: Any) -> None:
            die_if_told(self.stats.rows_written)  # a stat and a tiny write, on purpose on the loop: nothing runs after
            await real_commit(self, offsets)

        AuditWriter._commit = commit_or_die  # type: ignore[method-assign]


if __name__ == "__main__":
    _install()
    main()
