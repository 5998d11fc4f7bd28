"""The audit writer's receipt check: an accepted decision whose receipt does not verify against the published
receipt keys, or does not sign the event's own fields (``authenticity.py``), becomes a rejected one (reason
``unverified_receipt``). Keys that cannot be read are an infrastructure failure: back off and read them again.

A batch's receipts are checked together: the keys they name are looked up at once (a batch naming many made-up
key ids costs one read of the keys, not a wait per id), then each signature is verified on the loop, yielding
every few (an Ed25519 verification is the writer's largest cost per record, ~0.15-0.2 ms of CPU on a slow core).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord

from consumers.audit.authenticity import receipt_problem
from consumers.audit.batch import Abandoned
from consumers.audit.transform import Accepted, Rejected
from infra.receipt_keys import PublishedReceiptKeys, ReceiptKeysUnavailable
from schemas.decision_event import DecisionEvent

log = logging.getLogger("consumers.audit")

# On the loop, a signature check holds it ~0.1-0.3 ms: yield every so many.
_YIELD_EVERY = 4

Checked = tuple[Accepted, ConsumerRecord[Any, Any]]
_Claim = tuple[DecisionEvent, bytes | None]


def _problems(claims: Sequence[_Claim]) -> list[str | None]:
    return [receipt_problem(event, public_key) for event, public_key in claims]


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

    async def check(self, items: Sequence[Checked]) -> list[Accepted | Rejected]:
        """Each item, in order: itself if its receipt holds, else its record rejected. Raises ``Abandoned`` if the
        writer stops while the keys cannot be read (nothing is committed)."""
        keys = await self._public_keys({item.event.receipt.key_id for item, _ in items if item.event.receipt})
        claims = [(item.event, keys[item.event.receipt.key_id] if item.event.receipt else None) for item, _ in items]
        problems = await self._judge(claims)
        return [
            item
            if problem is None
            else Rejected(item.origin, "unverified_receipt", problem, record.value, tuple(record.headers or ()))
            for (item, record), problem in zip(items, problems, strict=True)
        ]

    async def _public_keys(self, key_ids: set[str]) -> dict[str, bytes | None]:
        attempt = 0
        while True:
            try:
                return await self._receipt_keys.get_many(key_ids) if key_ids else {}
            except ReceiptKeysUnavailable as exc:
                attempt += 1
                log.warning("%s (attempt %d); retrying, nothing committed", exc, attempt)
                await self._backoff(attempt)
                if self._stopping.is_set():
                    raise Abandoned from exc

    async def _judge(self, claims: list[_Claim]) -> list[str | None]:
        problems: list[str | None] = []
        for start in range(0, len(claims), _YIELD_EVERY):
            if start:
                await asyncio.sleep(0)
            problems.extend(_problems(claims[start : start + _YIELD_EVERY]))
        return problems
