"""A drop-in guard for the ``anthropic`` SDK: ``guarded(Anthropic(), governance=Client(...))``.

The guarded client behaves as the one it wraps. ``messages.create``, ``messages.parse`` and ``messages.stream``
(also under ``beta``, and through ``with_raw_response`` and ``with_streaming_response``) check first and raise
:class:`~governance_client.Blocked` before any request leaves for the provider; a stream is checked before it is
opened. Message batches and the beta tool runner make model calls the guard cannot check one by one, so it
refuses them (:class:`~governance_client.guarding.UnguardedCall`). ``count_tokens`` is passed through: it
counts, it does not generate.

Each call may add context to its check with ``governance_context={...}``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from governance_client import operations as ops
from governance_client.client import AsyncClient, Client
from governance_client.guarding import (
    ContextSource,
    Derive,
    Guarded,
    Refused,
    Table,
    guard_client,
    max_tokens_of,
    resource_table,
    root_table,
)

SdkClient = TypeVar("SdkClient")

BATCHES = Refused("a batch runs many model calls the guard cannot check one by one; check each with Client.check")
TOOL_RUNNER = Refused("the tool runner makes model calls the guard cannot check; loop over messages.create")


def guarded(
    client: SdkClient,
    governance: Client | AsyncClient,
    *,
    provider: str = "anthropic",
    context: ContextSource = None,
) -> SdkClient:
    """``client`` (an ``Anthropic`` or ``AsyncAnthropic``) with every model call checked by ``governance`` first.

    ``context`` (a mapping, or a function returning one per call) is added to each check. The sync SDK client
    needs a :class:`Client`, the async one an :class:`AsyncClient`.
    """
    proxy: SdkClient = guard_client(client, anthropic_table(provider), governance, context)
    return proxy


def anthropic_table(provider: str) -> Table:
    derive = _messages(provider)
    messages = resource_table(derive, extra={"batches": BATCHES})
    beta_messages = resource_table(derive, extra={"batches": BATCHES, "tool_runner": TOOL_RUNNER})
    resources: dict[str, Table | Guarded | Refused] = {
        "messages": messages,
        "beta": Table({"messages": beta_messages}),
    }
    return root_table(resources)


def _messages(provider: str) -> Derive:
    def derive(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        conversation: list[Any] = []
        system = kwargs.get("system")
        if isinstance(system, str):
            conversation.append({"role": "system", "content": system})
        elif isinstance(system, list | tuple):
            conversation.append({"role": "system", "content": ops.plain_json(system)})
        conversation.extend(ops.plain_json(kwargs.get("messages") or []))
        metadata = kwargs.get("metadata")
        return [
            ops.llm_call(
                str(kwargs.get("model", "")),
                conversation,
                provider=provider,
                max_tokens=max_tokens_of(kwargs, "max_tokens"),
                metadata=dict(metadata) if isinstance(metadata, dict) and metadata else None,
            )
        ]

    return derive
