"""A bounded mapping with expiry: what a forger can fill (negative caches, failure counts) never grows past it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedTtl(Generic[K, V]):
    """A mapping with at most ``max_entries`` entries, each forgotten ``ttl_s`` after it was put; when full, the
    least recently put entry goes first. What a forger fills (negative caches, failure counts) lives in these."""

    def __init__(self, max_entries: int, ttl_s: float, monotonic: Callable[[], float]) -> None:
        self.max_entries = max_entries
        self._ttl = ttl_s
        self._mono = monotonic
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self._mono():
            del self._items[key]
            return None
        return item[1]

    def put(self, key: K, value: V) -> None:
        self._items.pop(key, None)
        self._items[key] = (self._mono() + self._ttl, value)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
