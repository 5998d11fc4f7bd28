"""The guard around the real ``anthropic`` SDK, pointed at the provider stand-in and checked by the real service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anthropic import Anthropic, AsyncAnthropic

from governance_client import AsyncClient, Blocked, Client, FailOpen, GovernanceUnavailable, RetryPolicy
from governance_client.anthropic import guarded
from governance_client.guarding import UnguardedCall
from tests.clients.conftest import CLAUDE_MODEL, PERSONAL
from tests.conftest import LiveServer, SeededCustomer
from tests.support.client_standins import REPLY, StandIn
from tests.support.processes import free_port

SAFE = [{"role": "user", "content": "Summarise our Q3 roadmap in one line."}]
LEAKY = [{"role": "user", "content": [{"type": "text", "text": PERSONAL}]}]


def sdk(provider: StandIn) -> Anthropic:
    return Anthropic(base_url=provider.url, api_key="sk-ant-provider-test", max_retries=0)


def async_sdk(provider: StandIn) -> AsyncAnthropic:
    return AsyncAnthropic(base_url=provider.url, api_key="sk-ant-provider-test", max_retries=0)


@pytest.fixture
def gov(live_server: LiveServer, governed: SeededCustomer) -> Iterator[Client]:
    with Client(base_url=live_server.url, api_key=governed.key) as client:
        yield client


def test_allowed_message_reaches_the_provider(gov: Client, provider: StandIn) -> None:
    llm = guarded(sdk(provider), governance=gov)
    message = llm.messages.create(model=CLAUDE_MODEL, max_tokens=100, messages=SAFE, system="Be brief.")
    assert message.content[0].text == REPLY
    [sent] = provider.requests()
    assert sent.path == "/v1/messages"
    assert sent.body["messages"] == SAFE
    assert "sk-ant-provider-test" in (sent.headers.get("x-api-key", ""), sent.headers.get("authorization", "")[7:])


def test_blocked_message_never_leaves(gov: Client, provider: StandIn) -> None:
    llm = guarded(sdk(provider), governance=gov)
    with pytest.raises(Blocked) as caught:
        llm.messages.create(model=CLAUDE_MODEL, max_tokens=100, messages=LEAKY)
    assert caught.value.reason.startswith("Personal data detected")
    assert caught.value.request_id is not None
    with pytest.raises(Blocked):
        llm.messages.create(model=CLAUDE_MODEL, max_tokens=100, messages=SAFE, system=PERSONAL)
    with pytest.raises(Blocked):
        llm.messages.create(model=CLAUDE_MODEL, max_tokens=20_000, messages=SAFE)  # over the policy's max_tokens
    with pytest.raises(Blocked):
        llm.messages.stream(model=CLAUDE_MODEL, max_tokens=100, messages=LEAKY)
    with pytest.raises(Blocked):
        llm.messages.create(model=CLAUDE_MODEL, max_tokens=100, messages=LEAKY, stream=True)
    with pytest.raises(Blocked):
        llm.beta.messages.create(model=CLAUDE_MODEL, max_tokens=100, messages=LEAKY)
    with pytest.raises(Blocked):
        llm.with_raw_response.messages.create(model=CLAUDE_MODEL, max_tokens=100, messages=LEAKY)
    with pytest.raises(UnguardedCall):
        llm.messages.batches  # noqa: B018 - the attribute access itself is refused
    assert provider.requests() == []


def test_streams_run_when_allowed(gov: Client, provider: StandIn) -> None:
    llm = guarded(sdk(provider), governance=gov)
    with llm.messages.stream(model=CLAUDE_MODEL, max_tokens=100, messages=SAFE) as stream:
        text = "".join(stream.text_stream)
    assert text == REPLY
    events = llm.messages.create(model=CLAUDE_MODEL, max_tokens=100, messages=SAFE, stream=True)
    deltas = [e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    assert "".join(deltas) == REPLY
    assert len(provider.requests()) == 2


def test_outage_per_policy(provider: StandIn) -> None:
    port = free_port()
    retry = RetryPolicy(max_attempts=1)
    with (
        Client(base_url=f"http://127.0.0.1:{port}", api_key="sk_live_test", retry=retry) as down,
        pytest.raises(GovernanceUnavailable),
    ):
        guarded(sdk(provider), governance=down).messages.create(model=CLAUDE_MODEL, max_tokens=10, messages=SAFE)
    assert provider.requests() == []
    seen: list[GovernanceUnavailable] = []
    with Client(
        base_url=f"http://127.0.0.1:{port}", api_key="sk_live_test", retry=retry, outage=FailOpen(seen.append)
    ) as down:
        message = guarded(sdk(provider), governance=down).messages.create(
            model=CLAUDE_MODEL, max_tokens=10, messages=SAFE
        )
    assert message.content[0].text == REPLY
    assert len(seen) == 1
    assert len(provider.requests()) == 1


async def test_async_messages_and_streams(live_server: LiveServer, governed: SeededCustomer, provider: StandIn) -> None:
    async with AsyncClient(base_url=live_server.url, api_key=governed.key) as agov:
        llm = guarded(async_sdk(provider), governance=agov, context={"user_id": "user_123"})
        with pytest.raises(Blocked):
            await llm.messages.create(model=CLAUDE_MODEL, max_tokens=100, messages=LEAKY)
        with pytest.raises(Blocked):
            async with llm.messages.stream(model=CLAUDE_MODEL, max_tokens=100, messages=LEAKY):
                pass
        with pytest.raises(Blocked):
            await llm.messages.create(model=CLAUDE_MODEL, max_tokens=100, messages=LEAKY, stream=True)
        assert provider.requests() == []

        message = await llm.messages.create(model=CLAUDE_MODEL, max_tokens=100, messages=SAFE)
        assert message.content[0].text == REPLY
        async with llm.messages.stream(model=CLAUDE_MODEL, max_tokens=100, messages=SAFE) as stream:
            final = await stream.get_final_message()
        assert final.content[0].text == REPLY
    assert len(provider.requests()) == 2
