"""Operations for the check, built from what the caller is about to do.

Messages are sent as they are (so the service scans them for personal data), made plain JSON first: SDK
objects (pydantic models, iterables) become objects and lists, bytes are left out, an inline image or file
(a long base64 string, or a ``data:`` URL) is replaced by a note of its size, nesting deeper than the service
accepts is cut, and a string longer than the service's per-string limit is sent as a list of pieces within it,
so a long prompt is scanned instead of refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MAX_STRING = 65_536  # the service's limit on one string
_MAX_DEPTH = 30  # the service refuses more than 32 levels; the operation and its list take two
_BINARY_MIN = 4096  # shorter strings are sent as they are, whatever they look like
_BASE64 = re.compile(r"[A-Za-z0-9+/=_\-\r\n]+")  # no spaces: prose has them, base64 never
_DATA_URL = re.compile(r"data:[\w.+-]+/[\w.+-]+(;[\w-]+=[^;,]*)*;base64,")


def llm_call(
    model: str,
    messages: Any = None,
    *,
    provider: str | None = None,
    max_tokens: int | None = None,
    prompt: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An ``llm_call`` operation: the model, who hosts it, the tokens it may use, and the conversation."""
    operation: dict[str, Any] = {"type": "llm_call", "model": str(model)}
    if provider is not None:
        operation["provider"] = provider
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        operation["tokens"] = max_tokens
    if messages is not None:
        plain = plain_json(messages)
        operation["messages"] = [_as_message(item) for item in (plain if isinstance(plain, list) else [plain])]
    if prompt is not None:
        if len(prompt) <= MAX_STRING:
            operation["prompt"] = prompt
        else:
            operation.setdefault("messages", []).append({"role": "user", "content": split_long(prompt)})
    if metadata:
        operation["metadata"] = plain_json(metadata)
    return operation


def embedding(
    model: str, input: Any = None, *, provider: str | None = None, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An ``embedding`` operation. Input that is not text (token ids) is not sent."""
    operation: dict[str, Any] = {"type": "embedding", "model": str(model)}
    if provider is not None:
        operation["provider"] = provider
    if isinstance(input, str):
        if len(input) <= MAX_STRING:
            operation["input"] = input
        else:
            operation["input"] = split_long(input)
    elif isinstance(input, Iterable) and not isinstance(input, bytes | bytearray | Mapping):
        texts = [item for item in input if isinstance(item, str)]
        if texts:
            operation["input"] = [piece for text in texts for piece in _pieces(text)]
    if metadata:
        operation["metadata"] = plain_json(metadata)
    return operation


def plain_json(value: Any, *, depth: int = 0) -> Any:
    """``value`` as JSON-encodable data (see the module's docstring)."""
    if isinstance(value, str):
        return _plain_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json", exclude_none=True)
    if depth > _MAX_DEPTH or _is_bytes(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): plain_json(v, depth=depth + 1) for k, v in value.items() if not _is_bytes(v)}
    if isinstance(value, Iterable):
        return [plain_json(item, depth=depth + 1) for item in value if not _is_bytes(item)]
    return str(value)


def _plain_text(value: str) -> str | list[str]:
    if len(value) >= _BINARY_MIN:
        head = _DATA_URL.match(value)
        if head or _BASE64.fullmatch(value):
            return f"{head.group(0) if head else ''}<{len(value)} characters of base64 left out>"
    return value if len(value) <= MAX_STRING else split_long(value)


def split_long(text: str) -> list[str]:
    return list(_pieces(text))


def _pieces(text: str) -> Iterable[str]:
    if len(text) <= MAX_STRING:
        yield text
        return
    for start in range(0, len(text), MAX_STRING):
        yield text[start : start + MAX_STRING]


def _as_message(item: Any) -> dict[str, Any]:
    return item if isinstance(item, dict) else {"content": item}


def _is_bytes(value: Any) -> bool:
    return isinstance(value, bytes | bytearray | memoryview)
