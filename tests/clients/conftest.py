"""Fixtures of the client tests: a customer with a policy on the real service, and the provider stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

from tests.conftest import SeededCustomer, insert_customer
from tests.ingress.check.test_check import add_policy
from tests.support.client_standins import StandIn, provider_standin

CHAT_MODEL = "gpt-4o-mini"
CLAUDE_MODEL = "claude-sonnet-5-5"
EMBEDDING_MODEL = "text-embedding-3-small"
RULES = {
    "block_personal_data": True,
    "allowed_models": [CHAT_MODEL, CLAUDE_MODEL, EMBEDDING_MODEL],
    "max_tokens": 10000,
}
PERSONAL = "Please write to jane.doe@example.com about her claim."


@pytest.fixture
async def governed(pg_pool: asyncpg.Pool) -> SeededCustomer:
    """A customer whose policy allows the test models and blocks personal data."""
    customer = await insert_customer(pg_pool, tier="pro")
    await add_policy(pg_pool, customer.id, RULES, "Client tests")
    return customer


@pytest.fixture
def provider() -> Iterator[StandIn]:
    with provider_standin() as standin:
        yield standin
