"""One page of an admin list: the total count and the rows of ``limit``/``offset``, in one place.

Every list of the admin API (customers, keys, policies, alert rules, alerts, webhooks, deliveries) answers
``{items, total, limit, offset}`` from the same two queries over the same ``FROM … WHERE …``: a count, and the
rows in a stable order (ties broken by ``id``, so pages neither skip nor repeat rows). A module describes its list
once (``Listing``: the page type, how a row becomes an item, the columns and the order); the filters are the
caller's parameters ``$1…$n`` and the page's bounds always the two after them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

import asyncpg

from schemas.admin import Page

T = TypeVar("T")
Database: TypeAlias = asyncpg.Pool | asyncpg.Connection


@dataclass(frozen=True)
class Rows:
    """The columns a list reads and its order."""

    columns: str
    order_by: str

    async def fetch_rows(
        self, db: Database, source: str, args: Sequence[Any], limit: int, offset: int
    ) -> tuple[int, list[asyncpg.Record]]:
        """``SELECT count(*) {source}``, and the page's rows of ``SELECT {columns} {source} ORDER BY {order_by}``."""
        total = await db.fetchval(f"SELECT count(*) {source}", *args)
        bounds = f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
        query = f"SELECT {self.columns} {source} ORDER BY {self.order_by} {bounds}"
        return total, await db.fetch(query, *args, limit, offset)


@dataclass(frozen=True)
class Listing(Generic[T]):
    """How one admin list reads: ``page`` the response type, ``item`` a row made an item."""

    page: type[Page[T]]
    item: Callable[[asyncpg.Record], T]
    columns: str
    order_by: str

    async def fetch(self, db: Database, source: str, args: Sequence[Any], limit: int, offset: int) -> Page[T]:
        total, rows = await Rows(self.columns, self.order_by).fetch_rows(db, source, args, limit, offset)
        return self.page(items=[self.item(r) for r in rows], total=total, limit=limit, offset=offset)
