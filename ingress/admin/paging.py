"""One page of an admin list: the total count and the rows of ``limit``/``offset``, in one place.

Every list of the admin API (customers, keys, policies, alert rules, alerts, webhooks, deliveries) answers
``{items, total, limit, offset}`` from the same two queries over the same ``FROM … WHERE …``: a count, and the
rows in a stable order (ties broken by ``id``, so pages neither skip nor repeat rows). The filters are the
caller's parameters ``$1…$n``; the page's bounds are always the two after them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, TypeVar

import asyncpg

from schemas.admin import Page

T = TypeVar("T")
Database: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def count_and_fetch(
    db: Database,
    *,
    columns: str,
    source: str,
    order_by: str,
    args: Sequence[Any] = (),
    limit: int,
    offset: int,
) -> tuple[int, list[asyncpg.Record]]:
    """``SELECT count(*) {source}`` and ``SELECT {columns} {source} ORDER BY {order_by} LIMIT … OFFSET …``."""
    total = await db.fetchval(f"SELECT count(*) {source}", *args)
    bounds = f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
    rows = await db.fetch(f"SELECT {columns} {source} ORDER BY {order_by} {bounds}", *args, limit, offset)
    return total, rows


async def fetch_page(
    db: Database,
    page: type[Page[T]],
    item: Callable[[asyncpg.Record], T],
    *,
    columns: str,
    source: str,
    order_by: str,
    args: Sequence[Any] = (),
    limit: int,
    offset: int,
) -> Page[T]:
    """The page itself, each row made an item by ``item``."""
    total, rows = await count_and_fetch(
        db, columns=columns, source=source, order_by=order_by, args=args, limit=limit, offset=offset
    )
    return page(items=[item(r) for r in rows], total=total, limit=limit, offset=offset)
