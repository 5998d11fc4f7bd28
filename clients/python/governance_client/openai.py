"""A drop-in guard for the ``openai`` SDK: ``guarded(OpenAI(), governance=Client(...))``.

The guarded client behaves as the one it wraps. Chat completions, responses, legacy completions and embeddings
(``create``, ``parse``, ``stream``, and the same through ``with_raw_response`` and ``with_streaming_response``,
also under ``beta``) check first, and raise :class:`~governance_client.Blocked` before any request leaves for
the provider; a stream is checked before it is opened. Realtime sessions and ``responses.connect`` cannot be
checked call by call, so the guard refuses them (:class:`~governance_client.guarding.UnguardedCall`).

Each call may add context to its check with ``governance_context={...}``; the guard takes it out of the SDK's
arguments.
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

REALTIME = Refused("a realtime session sends model input the guard cannot check; check it with Client.check")


def guarded(
    client: SdkClient,
    governance: Client | AsyncClient,
    *,
    provider: str = "openai",
    context: ContextSource = None,
) -> SdkClient:
    """``client`` (an ``OpenAI`` or ``AsyncOpenAI``) with every model call checked by ``governance`` first.

    ``context`` (a mapping, or a function returning one per call) is added to each check: user, session,
    department. The sync SDK client needs a :class:`Client`, the async one an :class:`AsyncClient`.
    """
    proxy: SdkClient = guard_client(client, openai_table(provider), governance, context)
    return proxy


def openai_table(provider: str) -> Table:
    chat = resource_table(_chat(provider))
    responses = resource_table(_responses(provider), extra={"connect": REALTIME})
    completions = resource_table(_completions(provider), streams=False)
    embeddings = resource_table(_embeddings(provider), streams=False)
    resources: dict[str, Table | Guarded | Refused] = {
        "chat": Table({"completions": chat}),
        "responses": responses,
        "completions": completions,
        "embeddings": embeddings,
        "realtime": REALTIME,
        "beta": Table({"chat": Table({"completions": chat}), "responses": responses, "realtime": REALTIME}),
    }
    return root_table(resources)


def _chat(provider: str) -> Derive:
    def derive(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            ops.llm_call(
                str(kwargs.get("model", "")),
                kwargs.get("messages"),
                provider=provider,
                max_tokens=max_tokens_of(kwargs, "max_completion_tokens", "max_tokens"),
                metadata=_plain_metadata(kwargs),
            )
        ]

    return derive


def _responses(provider: str) -> Derive:
    def derive(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        text_input, instructions = kwargs.get("input"), kwargs.get("instructions")
        if "model" not in kwargs and text_input is None and kwargs.get("response_id"):
            return []  # resuming the stream of a response already made (and checked): no model call
        messages: list[Any] = []
        if isinstance(instructions, str):
            messages.append({"role": "system", "content": instructions})
        if isinstance(text_input, str):
            messages.append({"role": "user", "content": text_input})
        elif text_input is not None and not _is_sentinel(text_input):
            messages.extend(ops.plain_json(text_input) or [])
        metadata = _plain_metadata(kwargs)
        prompt = kwargs.get("prompt")
        if isinstance(prompt, dict):
            metadata = {**(metadata or {}), "prompt": prompt}
        return [
            ops.llm_call(
                str(kwargs.get("model", "")),
                messages,
                provider=provider,
                max_tokens=max_tokens_of(kwargs, "max_output_tokens"),
                metadata=metadata,
            )
        ]

    return derive


def _completions(provider: str) -> Derive:
    def derive(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        prompt = kwargs.get("prompt")
        texts = [prompt] if isinstance(prompt, str) else [p for p in prompt or () if isinstance(p, str)]
        return [
            ops.llm_call(
                str(kwargs.get("model", "")),
                [{"role": "user", "content": text} for text in texts],
                provider=provider,
                max_tokens=max_tokens_of(kwargs, "max_tokens"),
            )
        ]

    return derive


def _embeddings(provider: str) -> Derive:
    def derive(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        return [ops.embedding(str(kwargs.get("model", "")), kwargs.get("input"), provider=provider)]

    return derive


def _plain_metadata(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    metadata = kwargs.get("metadata")
    return dict(metadata) if isinstance(metadata, dict) and metadata else None


def _is_sentinel(value: Any) -> bool:
    """The SDK's ``omit``/``not_given`` markers, passed explicitly."""
    return type(value).__name__ in {"Omit", "NotGiven"}
