"""The guard around the real ``openai`` SDK, pointed at the provider stand-in and checked by the real service:
a blocked check means the stand-in received nothing; an allowed one reaches it; outages per policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import AsyncOpenAI, OpenAI

from governance_client import AsyncClient, Blocked, Client, FailOpen, GovernanceUnavailable, RetryPolicy
from governance_client.guarding import UnguardedCall
from governance_client.openai import guarded
from tests.clients.conftest import CHAT_MODEL, EMBEDDING_MODEL, PERSONAL
from tests.conftest import LiveServer, SeededCustomer
from tests.support.client_standins import REPLY, StandIn
from tests.support.processes import free_port

SAFE = [{"role": "user", "content": "Summarise our Q3 roadmap in one line."}]
LEAKY = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": PERSONAL}]


def sdk(provider: StandIn) -> OpenAI:
    return OpenAI(base_url=f"{provider.url}/v1", api_key="sk-provider-test", max_retries=0)


def async_sdk(provider: StandIn) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{provider.url}/v1", api_key="sk-provider-test", max_retries=0)


@pytest.fixture
def gov(live_server: LiveServer, governed: SeededCustomer) -> Iterator[Client]:
    with Client(base_url=live_server.url, api_key=governed.key, context={"department": "engineering"}) as client:
        yield client


def test_allowed_chat_completion_reaches_the_provider(gov: Client, provider: StandIn) -> None:
    llm = guarded(sdk(provider), governance=gov)
    answer = llm.chat.completions.create(model=CHAT_MODEL, messages=SAFE, max_tokens=50)
    assert answer.choices[0].message.content == REPLY
    [sent] = provider.requests()
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == SAFE
    assert sent.headers["authorization"] == "Bearer sk-provider-test"


def test_blocked_chat_completion_never_leaves(gov: Client, provider: StandIn) -> None:
    with guarded(sdk(provider), governance=gov) as llm, pytest.raises(Blocked) as caught:
        llm.chat.completions.create(model=CHAT_MODEL, messages=LEAKY)
    assert caught.value.reason.startswith("Personal data detected")
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")
    assert provider.requests() == []


def test_streaming_is_guarded(gov: Client, provider: StandIn) -> None:
    llm = guarded(sdk(provider), governance=gov)
    with pytest.raises(Blocked):
        llm.chat.completions.create(model=CHAT_MODEL, messages=LEAKY, stream=True)
    with pytest.raises(Blocked):
        llm.chat.completions.stream(model=CHAT_MODEL, messages=LEAKY)
    assert provider.requests() == []

    chunks = llm.chat.completions.create(model=CHAT_MODEL, messages=SAFE, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == REPLY
    with llm.chat.completions.stream(model=CHAT_MODEL, messages=SAFE) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == REPLY
    assert len(provider.requests()) == 2
    assert all(r.body["stream"] is True for r in provider.requests())


def test_an_inline_image_larger_than_our_body_limit_is_not_sent_to_us(gov: Client, provider: StandIn) -> None:
    image = "data:image/png;base64," + "iVBORw0KGgo" * 200_000  # 2.2 MB, over the service's 1 MiB body limit
    content = [{"type": "text", "text": "What is in this picture?"}, {"type": "image_url", "image_url": {"url": image}}]
    llm = guarded(sdk(provider), governance=gov)
    answer = llm.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": content}])
    assert answer.choices[0].message.content == REPLY
    [sent] = provider.requests()
    assert sent.body["messages"][0]["content"][1]["image_url"]["url"] == image  # the provider gets it whole


def test_a_model_outside_the_policy_is_blocked(gov: Client, provider: StandIn) -> None:
    llm = guarded(sdk(provider), governance=gov)
    with pytest.raises(Blocked) as caught:
        llm.chat.completions.create(model="gpt-5-unapproved", messages=SAFE)
    assert "allowed models" in caught.value.reason
    assert provider.requests() == []


def test_call_context_is_checked_too(gov: Client, provider: StandIn) -> None:
    llm = guarded(sdk(provider), governance=gov, context=lambda: {"user_id": "user_123"})
    with pytest.raises(Blocked) as caught:
        llm.chat.completions.create(
            model=CHAT_MODEL, messages=SAFE, governance_context={"contact": "jane.doe@example.com"}
        )
    assert caught.value.reason == "Personal data detected in context"
    llm.chat.completions.create(model=CHAT_MODEL, messages=SAFE, governance_context={"session_id": "s1"})
    [sent] = provider.requests()
    assert "governance_context" not in sent.body


def test_responses_api_is_guarded(gov: Client, provider: StandIn) -> None:
    llm = guarded(sdk(provider), governance=gov)
    with pytest.raises(Blocked):
        llm.responses.create(model=CHAT_MODEL, input=PERSONAL)
    with pytest.raises(Blocked):
        llm.responses.create(model=CHAT_MODEL, instructions=PERSONAL, input="hello", max_output_tokens=20)
    assert provider.requests() == []
    answer = llm.responses.create(model=CHAT_MODEL, input="Say hello.")
    assert answer.output_text == REPLY
    assert [r.path for r in provider.requests()] == ["/v1/responses"]


def test_raw_and_streaming_views_embeddings_and_copies_are_guarded(gov: Client, provider: StandIn) -> None:
    llm = guarded(sdk(provider), governance=gov)
    with pytest.raises(Blocked):
        llm.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=LEAKY)
    with pytest.raises(Blocked):
        llm.with_raw_response.chat.completions.create(model=CHAT_MODEL, messages=LEAKY)
    with pytest.raises(Blocked):
        llm.chat.completions.with_streaming_response.create(model=CHAT_MODEL, messages=LEAKY)
    with pytest.raises(Blocked):
        llm.embeddings.create(model=EMBEDDING_MODEL, input=[PERSONAL])
    with pytest.raises(Blocked):
        llm.with_options(timeout=5).chat.completions.create(model=CHAT_MODEL, messages=LEAKY)
    with pytest.raises(UnguardedCall):
        llm.responses.connect  # noqa: B018 - the attribute access itself is refused
    assert provider.requests() == []

    raw = llm.with_raw_response.chat.completions.create(model=CHAT_MODEL, messages=SAFE)
    assert raw.parse().choices[0].message.content == REPLY
    vectors = llm.embeddings.create(model=EMBEDDING_MODEL, input=["hello"])
    assert vectors.data[0].embedding == [0.1, 0.2, 0.3]
    assert llm.models is not None  # everything else is the SDK's own
    assert len(provider.requests()) == 2


def test_outage_fails_closed_and_nothing_is_sent(provider: StandIn) -> None:
    port = free_port()  # a stopped governance service
    retry = RetryPolicy(max_attempts=2, backoff_s=0.01)
    with Client(base_url=f"http://127.0.0.1:{port}", api_key="sk_live_test", retry=retry) as down:
        llm = guarded(sdk(provider), governance=down)
        with pytest.raises(GovernanceUnavailable):
            llm.chat.completions.create(model=CHAT_MODEL, messages=SAFE)
    assert provider.requests() == []


def test_outage_fails_open_with_the_callback(provider: StandIn) -> None:
    port = free_port()
    outages: list[GovernanceUnavailable] = []
    with Client(
        base_url=f"http://127.0.0.1:{port}",
        api_key="sk_live_test",
        retry=RetryPolicy(max_attempts=1),
        outage=FailOpen(outages.append),
    ) as down:
        llm = guarded(sdk(provider), governance=down)
        answer = llm.chat.completions.create(model=CHAT_MODEL, messages=SAFE)
    assert answer.choices[0].message.content == REPLY
    assert len(outages) == 1
    assert len(provider.requests()) == 1


def test_guard_needs_the_matching_client(gov: Client, provider: StandIn) -> None:
    with pytest.raises(TypeError):
        guarded(async_sdk(provider), governance=gov)


async def test_async_client_create_stream_and_responses(
    live_server: LiveServer, governed: SeededCustomer, provider: StandIn
) -> None:
    async with (
        AsyncClient(base_url=live_server.url, api_key=governed.key) as agov,
        guarded(async_sdk(provider), governance=agov) as llm,
    ):
        with pytest.raises(Blocked):
            await llm.chat.completions.create(model=CHAT_MODEL, messages=LEAKY, stream=True)
        with pytest.raises(Blocked):
            async with llm.chat.completions.stream(model=CHAT_MODEL, messages=LEAKY):
                pass
        with pytest.raises(Blocked):
            async with llm.responses.stream(model=CHAT_MODEL, input=PERSONAL):
                pass
        with pytest.raises(Blocked):
            async with llm.chat.completions.with_streaming_response.create(model=CHAT_MODEL, messages=LEAKY):
                pass
        with pytest.raises(Blocked):
            await llm.responses.create(model=CHAT_MODEL, input=PERSONAL)
        assert provider.requests() == []

        answer = await llm.chat.completions.create(model=CHAT_MODEL, messages=SAFE)
        assert answer.choices[0].message.content == REPLY
        chunks = await llm.chat.completions.create(model=CHAT_MODEL, messages=SAFE, stream=True)
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in chunks if chunk.choices])
        assert text == REPLY
        async with llm.chat.completions.stream(model=CHAT_MODEL, messages=SAFE) as stream:
            final = await stream.get_final_completion()
        assert final.choices[0].message.content == REPLY
        reply = await llm.responses.create(model=CHAT_MODEL, input="Say hello.")
        assert reply.output_text == REPLY
    assert len(provider.requests()) == 4
