"""A LiteLLM custom guardrail: the check runs before the model call, and a blocked check stops it.

    from governance_client import AsyncClient
    from governance_client.litellm import GovernanceGuardrail

    litellm.callbacks = [GovernanceGuardrail(governance=AsyncClient(api_key="sk_live_..."))]
    await litellm.acompletion(model="openai/gpt-4o-mini", messages=[...])   # raises Blocked when blocked

On the LiteLLM proxy the same class runs as a ``pre_call`` guardrail (``async_pre_call_hook``). In the SDK it
runs in LiteLLM's pre-call deployment hook, which LiteLLM calls for its async entry points (``acompletion``);
LiteLLM's synchronous ``completion`` calls no pre-call hook, so guard synchronous code with ``Client.check``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litellm.integrations.custom_guardrail import CustomGuardrail
from litellm.types.guardrails import GuardrailEventHooks

from governance_client import operations as ops
from governance_client.client import AsyncClient
from governance_client.guarding import ContextSource, max_tokens_of
from governance_client.results import CheckResult

CHECKED_MARK = "governance_request_id"  # in the call's metadata, so the proxy's two hooks check once


class GovernanceGuardrail(CustomGuardrail):  # type: ignore[misc]  # mypy does not follow litellm (see pyproject.toml)
    """Checks every chat completion with the governance service before LiteLLM sends it.

    Without ``governance`` it builds an :class:`AsyncClient` from ``GOVERNANCE_URL`` and ``GOVERNANCE_API_KEY``
    (the LiteLLM proxy constructs guardrails from its configuration file). ``context`` (a mapping, or a function
    returning one) is added to each check, beside what LiteLLM knows of the caller (its ``user`` argument, and on
    the proxy the key's user and team)."""

    def __init__(
        self,
        governance: AsyncClient | None = None,
        *,
        context: ContextSource = None,
        guardrail_name: str = "governance",
        event_hook: Any = GuardrailEventHooks.pre_call,
        default_on: bool = True,
        **kwargs: Any,
    ) -> None:
        if governance is None:
            governance = AsyncClient()  # GOVERNANCE_URL and GOVERNANCE_API_KEY, as on the LiteLLM proxy
        if not isinstance(governance, AsyncClient):
            raise TypeError("the LiteLLM guardrail needs governance=AsyncClient(...)")
        self.governance = governance
        self.context = context
        super().__init__(guardrail_name=guardrail_name, event_hook=event_hook, default_on=default_on, **kwargs)

    async def async_pre_call_hook(  # LiteLLM passes every argument by name
        self,
        user_api_key_dict: Any,
        cache: Any,  # noqa: ARG002
        data: dict[str, Any],
        call_type: Any,  # noqa: ARG002
    ) -> dict[str, Any]:
        """The proxy's pre-call hook: raises :class:`~governance_client.Blocked` when the check says no."""
        await self.check(data, caller=user_api_key_dict)
        return data

    async def async_pre_call_deployment_hook(
        self,
        kwargs: dict[str, Any],
        call_type: Any,  # noqa: ARG002
    ) -> dict[str, Any]:
        """The SDK's pre-call hook (also on the proxy, after the deployment is chosen)."""
        metadata = kwargs.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get(CHECKED_MARK):
            return kwargs
        if "messages" in kwargs or "model" in kwargs:
            await self.check(kwargs)
        return kwargs

    async def check(self, data: Mapping[str, Any], caller: Any = None) -> CheckResult:
        model, provider = split_model(data)
        operation = ops.llm_call(
            model,
            data.get("messages") or [],
            provider=provider,
            max_tokens=max_tokens_of(data, "max_completion_tokens", "max_tokens"),
        )
        result = await self.governance.check([operation], self._context(data, caller))
        result.raise_if_blocked()
        metadata = data.get("metadata")
        if isinstance(metadata, dict) and result.request_id:
            metadata[CHECKED_MARK] = result.request_id
        return result

    def _context(self, data: Mapping[str, Any], caller: Any) -> dict[str, Any]:
        context: dict[str, Any] = {}
        if isinstance(data.get("user"), str):
            context["user_id"] = data["user"]
        for source, name in (("user_id", "user_id"), ("team_id", "team_id")):
            value = getattr(caller, source, None)
            if isinstance(value, str) and value:
                context.setdefault(name, value)
        base = self.context() if callable(self.context) else (self.context or {})
        return {**context, **base}


def split_model(data: Mapping[str, Any]) -> tuple[str, str | None]:
    """``openai/gpt-4o-mini`` as (``gpt-4o-mini``, ``openai``); a bare model keeps LiteLLM's provider if given."""
    model = str(data.get("model") or "")
    provider = data.get("custom_llm_provider")
    if "/" in model:
        prefix, _, rest = model.partition("/")
        return rest, str(provider or prefix)
    return model, str(provider) if provider else None
