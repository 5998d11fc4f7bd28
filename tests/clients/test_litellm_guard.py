"""The LiteLLM guardrail with the real ``litellm`` SDK, pointed at the provider stand-in and checked by the real
service; and its proxy hook called as the LiteLLM proxy calls it."""

from __future__ import annotations

import os

# LiteLLM fetches its model price list from the network at import unless told to use the copy it ships.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import AsyncIterator, Iterator

import litellm
import pytest

from governance_client import AsyncClient, Blocked, GovernanceUnavailable, RetryPolicy
from governance_client.litellm import CHECKED_MARK, GovernanceGuardrail, split_model
from tests.clients.conftest import CHAT_MODEL, CLAUDE_MODEL, PERSONAL
from tests.conftest import LiveServer, SeededCustomer
from tests.support.client_standins import REPLY, StandIn
from tests.support.processes import free_port

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic on LiteLLM's typed dicts

SAFE = [{"role": "user", "content": "Summarise our Q3 roadmap in one line."}]
LEAKY = [{"role": "user", "content": PERSONAL}]


@pytest.fixture
async def agov(live_server: LiveServer, governed: SeededCustomer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(base_url=live_server.url, api_key=governed.key) as client:
        yield client


@pytest.fixture
def callbacks() -> Iterator[list[object]]:
    before = list(litellm.callbacks)
    yield litellm.callbacks
    litellm.callbacks = before


async def test_acompletion_is_checked_first(agov: AsyncClient, provider: StandIn, callbacks: list[object]) -> None:
    litellm.callbacks = [GovernanceGuardrail(governance=agov, context={"department": "engineering"})]
    openai_model = f"openai/{CHAT_MODEL}"
    with pytest.raises(Blocked) as caught:
        await litellm.acompletion(model=openai_model, api_base=f"{provider.url}/v1", api_key="sk-x", messages=LEAKY)
    assert caught.value.reason.startswith("Personal data detected")
    with pytest.raises(Blocked):
        await litellm.acompletion(
            model=f"anthropic/{CLAUDE_MODEL}", api_base=provider.url, api_key="sk-x", messages=LEAKY, max_tokens=50
        )
    with pytest.raises(Blocked):
        await litellm.acompletion(
            model="openai/gpt-5-unapproved", api_base=f"{provider.url}/v1", api_key="sk-x", messages=SAFE
        )
    assert provider.requests() == []

    answer = await litellm.acompletion(
        model=openai_model, api_base=f"{provider.url}/v1", api_key="sk-x", messages=SAFE, max_tokens=50
    )
    assert answer.choices[0].message.content == REPLY
    [sent] = provider.requests()
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == SAFE


async def test_outage_fails_closed_through_litellm(provider: StandIn, callbacks: list[object]) -> None:
    port = free_port()
    async with AsyncClient(
        base_url=f"http://127.0.0.1:{port}", api_key="sk_live_test", retry=RetryPolicy(max_attempts=1)
    ) as down:
        litellm.callbacks = [GovernanceGuardrail(governance=down)]
        with pytest.raises(GovernanceUnavailable):
            await litellm.acompletion(
                model=f"openai/{CHAT_MODEL}", api_base=f"{provider.url}/v1", api_key="sk-x", messages=SAFE
            )
    assert provider.requests() == []


async def test_proxy_pre_call_hook_blocks_and_marks_what_it_checked(agov: AsyncClient) -> None:
    from litellm.proxy._types import UserAPIKeyAuth

    guard = GovernanceGuardrail(governance=agov)
    caller = UserAPIKeyAuth(user_id="user_123", team_id="team-research")
    blocked = {"model": CHAT_MODEL, "messages": LEAKY, "metadata": {}}
    with pytest.raises(Blocked):
        await guard.async_pre_call_hook(user_api_key_dict=caller, cache=None, data=blocked, call_type="completion")
    allowed = {"model": CHAT_MODEL, "messages": SAFE, "metadata": {}, "user": "end-user-9"}
    out = await guard.async_pre_call_hook(user_api_key_dict=caller, cache=None, data=allowed, call_type="completion")
    assert out is allowed
    assert out["metadata"][CHECKED_MARK].startswith("req_")
    # the deployment hook that follows on the proxy does not check the same call again
    assert await guard.async_pre_call_deployment_hook(out, None) is out


def test_without_a_client_the_guardrail_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERNANCE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GOVERNANCE_API_KEY", "sk_live_from_env")
    guard = GovernanceGuardrail(guardrail_name="governance", event_hook="pre_call", default_on=True)  # as the proxy
    assert guard.governance.base_url == "http://127.0.0.1:9"
    assert guard.guardrail_name == "governance"
    assert "sk_live_from_env" not in repr(guard.governance)


def test_models_are_split_into_provider_and_model() -> None:
    assert split_model({"model": "openai/gpt-4o-mini"}) == ("gpt-4o-mini", "openai")
    assert split_model({"model": "gpt-4o-mini", "custom_llm_provider": "azure"}) == ("gpt-4o-mini", "azure")
    assert split_model({"model": "claude-sonnet-5-5"}) == ("claude-sonnet-5-5", None)
