"""The audit writer's receipt check: an accepted decision whose receipt does not verify against the published
receipt keys, or does not sign the event's own fields (``authenticity.py``), becomes a rejected one (reason
``unverified_receipt``). Keys that cannot be read are an infrastructure failure: back off and read them again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRecord

from consumers.audit.authenticity import receipt_problem
from consumers.audit.batch import VERIFY_YIELD_EVERY, Abandoned
from consumers.audit.transform import Accepted, Rejected
from infra.receipt_keys import PublishedReceiptKeys, ReceiptKeysUnavailable

log = logging.getLogger("consumers.audit")


class ReceiptCheck:
    def __init__(
        self,
        receipt_keys: PublishedReceiptKeys,
        stopping: asyncio.Event,
        backoff: Callable[[int], Awaitable[None]],
    ) -> None:
        self._receipt_keys = receipt_keys
        self._stopping = stopping
        self._backoff = backoff
        self._verified = 0

    async def check(self, item: Accepted, record: ConsumerRecord[Any, Any]) -> Accepted | Rejected:
        """``item`` if its receipt holds, else the record rejected; raises ``Abandoned`` if the writer stops while
        the keys cannot be read (nothing is committed)."""
        receipt = item.event.receipt
        attempt = 0
        while True:
            try:
                public_key = await self._receipt_keys.get(receipt.key_id) if receipt is not None else None
                break
            except ReceiptKeysUnavailable as exc:
                attempt += 1
                log.warning("%s (attempt %d); retrying, nothing committed", exc, attempt)
                await self._backoff(attempt)
                if self._stopping.is_set():
                    raise Abandoned from exc
        self._verified += 1
        if self._verified % VERIFY_YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a signature check is ~0.1-0.3 ms of CPU on the loop that also answers reads
        problem = receipt_problem(item.event, public_key)
        if problem is None:
            return item
        return Rejected(item.origin, "unverified_receipt", problem, record.value, tuple(record.headers or ()))
