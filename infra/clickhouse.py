"""ClickHouse client factory: embedded chdb by default, a ClickHouse server when CLICKHOUSE_URL is http(s)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

_embedded_lock = threading.Lock()
_embedded: dict[str, Client] = {}


def build_clickhouse_client(dsn: str, *, database: str = "governance", **kwargs: Any) -> Client:
    """Return a client for ``dsn``.

    The embedded engine can be opened once per process, so one client per chdb path is shared; it is
    created on first use and the database is created if missing.
    """
    if dsn.startswith("chdb:"):
        with _embedded_lock:
            client = _embedded.get(dsn)
            if client is None:
                path = dsn.removeprefix("chdb://")
                if path.startswith("/"):
                    Path(path).mkdir(parents=True, exist_ok=True)
                client = clickhouse_connect.get_client(dsn=dsn)
                client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
                _embedded[dsn] = client
            return client
    client = clickhouse_connect.get_client(dsn=dsn, **kwargs)
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    return client
