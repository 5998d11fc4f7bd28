"""The machinery of the drop-in guards: a proxy that behaves like an SDK client, except that the methods which
call a model check first, and raise :class:`Blocked` before any request leaves for the provider.

A guard is a table: for each attribute path of the SDK client, either a sub-table (a resource), a guarded
method (how to derive the operations from its keyword arguments, and whether it returns an awaitable or a
context manager), or a refusal (an entry point that would reach the model unchecked). Everything not in the
table is the SDK's own attribute, untouched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from governance_client.client import AsyncClient, Client
from governance_client.errors import GovernanceError

Derive = Callable[[dict[str, Any]], list[dict[str, Any]]]
ContextSource = Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None
CONTEXT_KEYWORD = "governance_context"
_COPIERS = frozenset({"copy", "with_options"})


class UnguardedCall(GovernanceError):
    """An SDK entry point that would reach the model without a check; the guard refuses it."""


@dataclass(frozen=True)
class Guarded:
    """A method that checks its call first. ``kind``: ``call`` returns the SDK's answer (awaitable on an async
    client), ``manager`` returns a context manager (a stream) that is entered only after the check passed."""

    derive: Derive
    kind: Literal["call", "manager"] = "call"


@dataclass(frozen=True)
class Refused:
    why: str


@dataclass(frozen=True)
class Table:
    members: Mapping[str, Table | Guarded | Refused] = field(default_factory=dict)
    root: bool = False  # the client itself, whose copy/with_options must stay guarded


@dataclass(frozen=True)
class Guard:
    """What one guarded SDK client checks with: the governance client and the context added to every check."""

    governance: Client | AsyncClient
    context: ContextSource = None

    def _context(self, extra: Any) -> dict[str, Any]:
        base = self.context() if callable(self.context) else (self.context or {})
        return {**base, **(extra or {})}

    def check(self, operations: list[dict[str, Any]], extra: Any) -> None:
        if not operations:
            return
        assert isinstance(self.governance, Client)  # noqa: S101 - guaranteed by guard_client
        self.governance.check(operations, self._context(extra)).raise_if_blocked()

    async def check_async(self, operations: list[dict[str, Any]], extra: Any) -> None:
        if not operations:
            return
        assert isinstance(self.governance, AsyncClient)  # noqa: S101 - guaranteed by guard_client
        (await self.governance.check(operations, self._context(extra))).raise_if_blocked()


class GuardedProxy:
    """Behaves as the wrapped SDK object; the table's members are replaced by checked ones."""

    __slots__ = ("_guard", "_is_async", "_table", "_target")

    def __init__(self, target: Any, table: Table, guard: Guard, is_async: bool) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_guard", guard)
        object.__setattr__(self, "_is_async", is_async)

    def __getattr__(self, name: str) -> Any:
        if self._table.root and name in _COPIERS:
            copier = getattr(self._target, name)
            table, guard = self._table, self._guard

            @functools.wraps(copier)
            def copy(*args: Any, **kwargs: Any) -> Any:
                return guard_client(copier(*args, **kwargs), table, guard.governance, guard.context)

            return copy
        member = self._table.members.get(name)
        if isinstance(member, Refused):
            raise UnguardedCall(f"{name} is not guarded: {member.why}")
        value = getattr(self._target, name)
        if isinstance(member, Table):
            return GuardedProxy(value, member, self._guard, self._is_async)
        if isinstance(member, Guarded):
            return _checked(value, member, self._guard, self._is_async)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._target)))

    def __repr__(self) -> str:
        return f"guarded({self._target!r})"

    # ``with guarded(OpenAI()) as llm`` keeps the guard: the SDK client is entered and closed, ``llm`` is the proxy.
    def __enter__(self) -> GuardedProxy:
        self._target.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._target.__exit__(*exc)

    async def __aenter__(self) -> GuardedProxy:
        await self._target.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._target.__aexit__(*exc)


def guard_client(target: Any, table: Table, governance: Client | AsyncClient, context: ContextSource) -> Any:
    """Wrap an SDK client. Its ``copy`` and ``with_options`` answer guarded clients too."""
    is_async = _is_async_client(target)
    if is_async and not isinstance(governance, AsyncClient):
        raise TypeError("an async SDK client needs governance=AsyncClient(...)")
    if not is_async and not isinstance(governance, Client):
        raise TypeError("a sync SDK client needs governance=Client(...)")
    return GuardedProxy(target, table, Guard(governance, context), is_async)


def _checked(method: Callable[..., Any], spec: Guarded, guard: Guard, is_async: bool) -> Callable[..., Any]:
    if not is_async:

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            extra = kwargs.pop(CONTEXT_KEYWORD, None)
            guard.check(spec.derive(kwargs), extra)
            return method(*args, **kwargs)

        return call

    if spec.kind == "manager":

        @functools.wraps(method)
        def open_stream(*args: Any, **kwargs: Any) -> CheckedStream:
            extra = kwargs.pop(CONTEXT_KEYWORD, None)
            return CheckedStream(guard, spec.derive(kwargs), extra, functools.partial(method, *args, **kwargs))

        return open_stream

    @functools.wraps(method)
    async def call_async(*args: Any, **kwargs: Any) -> Any:
        extra = kwargs.pop(CONTEXT_KEYWORD, None)
        await guard.check_async(spec.derive(kwargs), extra)
        return await method(*args, **kwargs)

    return call_async


class CheckedStream:
    """An async stream manager that checks on entry and only then opens the SDK's stream."""

    def __init__(
        self, guard: Guard, operations: list[dict[str, Any]], extra: Any, open_stream: Callable[[], Any]
    ) -> None:
        self._guard = guard
        self._operations = operations
        self._extra = extra
        self._open = open_stream
        self._inner: Any = None

    async def __aenter__(self) -> Any:
        await self._guard.check_async(self._operations, self._extra)
        self._inner = self._open()
        return await self._inner.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        return await self._inner.__aexit__(exc_type, exc, tb)


def resource_table(derive: Derive, *, streams: bool = True, extra: dict[str, Refused] | None = None) -> Table:
    """A resource whose ``create`` (and with ``streams`` also ``parse`` and ``stream``) are checked, directly and
    through its ``with_raw_response`` and ``with_streaming_response`` views."""
    methods: dict[str, Table | Guarded | Refused] = {"create": Guarded(derive)}
    views: dict[str, Table | Guarded | Refused] = {"create": Guarded(derive)}
    if streams:
        methods["parse"] = Guarded(derive)
        methods["stream"] = Guarded(derive, "manager")
        views["parse"] = Guarded(derive)
    return Table(
        {
            **methods,
            **(extra or {}),
            "with_raw_response": Table(views),
            "with_streaming_response": streaming_view(Table(views)),
        }
    )


def raw_view(member: Table | Guarded | Refused) -> Table | None:
    """The same resources as the client's ``with_raw_response`` shows them: create and parse only."""
    if not isinstance(member, Table):
        return None
    out: dict[str, Table | Guarded | Refused] = {}
    for name, value in member.members.items():
        if name in {"create", "parse"} or isinstance(value, Refused):
            out[name] = value
        elif isinstance(value, Table) and name not in {"with_raw_response", "with_streaming_response"}:
            view = raw_view(value)
            if view is not None:
                out[name] = view
    return Table(out)


def streaming_view(table: Table) -> Table:
    """``with_streaming_response`` returns context managers: checked when entered on an async client."""
    out: dict[str, Table | Guarded | Refused] = {}
    for name, value in table.members.items():
        if isinstance(value, Guarded):
            out[name] = Guarded(value.derive, "manager")
        elif isinstance(value, Table):
            out[name] = streaming_view(value)
        else:
            out[name] = value
    return Table(out)


def root_table(resources: Mapping[str, Table | Guarded | Refused]) -> Table:
    """The client's table: its resources, and the same through its own ``with_raw_response`` and
    ``with_streaming_response`` views."""
    raw: dict[str, Table | Guarded | Refused] = {}
    for name, member in resources.items():
        view = member if isinstance(member, Refused) else raw_view(member)
        if view is not None:
            raw[name] = view
    raw_table = Table(raw)
    return Table(
        {**resources, "with_raw_response": raw_table, "with_streaming_response": streaming_view(raw_table)},
        root=True,
    )


def _is_async_client(target: Any) -> bool:
    return any(cls.__name__.startswith("Async") for cls in type(target).__mro__)


def max_tokens_of(kwargs: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = kwargs.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
