"""Errors of the tenancy layer. They are ``ApiError``s, so the API answers them as they are and the CLI prints
the same message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import asyncpg

from ingress.http.errors import ApiError


class TenancyError(ApiError):
    """A refusal the caller can act on (unknown id, duplicate name, wrong state)."""


class NotFound(TenancyError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not_found", f"{what} not found")


class Conflict(TenancyError):
    def __init__(self, message: str) -> None:
        super().__init__(409, "conflict", message)


def parse_id(raw: str | UUID, what: str) -> UUID:
    """A path id that is not a UUID names nothing we store: answer "not found", as for an unknown UUID."""
    if isinstance(raw, UUID):
        return raw
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(what) from None


@contextmanager
def duplicates_as_conflict(messages: dict[str, str]) -> Iterator[None]:
    """Turn a unique-index violation into a 409 with the message given for that index."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        message = messages.get(exc.constraint_name or "")
        if message is None:
            raise
        raise Conflict(message) from None
