"""The examples of README.md and docs/, found rather than listed (``EXAMPLES``: every fenced shell block that calls
``curl`` or ``govern``, every Python block, every inline ``govern …`` synopsis), and what each is given to run:
a fresh customer, keys, a policy and an admin key (``Fixtures``) put in place of a reader's placeholders
(``fill_in``), and the shell prelude that fails an example on any failing ``curl`` or ``govern``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.conftest import LiveServer, SeededCustomer

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = ROOT / ".venv" / "bin"

Kind = Literal["shell", "python", "synopsis"]

# (document, text the example contains) -> why it is not run here. Keep this short.
_PROVIDER = "calls a model provider, which the test stack cannot reach; tests/clients runs the guards on a stand-in"
SKIPPED: dict[tuple[str, str], str] = {
    ("docs/integrators.md", "llm = guarded(OpenAI(), governance=Client("): _PROVIDER,
    ("docs/integrators.md", "governance_context="): _PROVIDER,
    ("docs/integrators.md", "litellm.callbacks = ["): _PROVIDER,
}

CHECK_BODY = {
    "operations": [{"type": "llm_call", "model": "gpt-4", "tokens": 500}],
    "context": {"user_id": "user_123", "session_id": "session_456"},
}
POLICY_RULES = {"max_external_calls": 5, "block_personal_data": True, "allowed_models": ["gpt-4", "claude-3"]}


@dataclass(frozen=True)
class Example:
    document: str  # relative to the project root
    line: int
    kind: Kind
    text: str

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}:{self.kind}"


_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_COMMAND = re.compile(r"^\s*(?:[A-Z_]+=\S*\s+)*(?:\S*=\$\()?(?:\.venv/bin/)?(?:curl|govern)\b", re.M)
_INLINE_GOVERN = re.compile(r"`((?:\.venv/bin/)?govern [^`]+)`")


def find_examples() -> list[Example]:
    found: list[Example] = []
    for path in DOCUMENTS:
        text = path.read_text()
        name = str(path.relative_to(ROOT))
        fenced = []
        for match in _FENCE.finditer(text):
            language, body = match.group(1), match.group(2)
            line = text.count("\n", 0, match.start()) + 1
            fenced.append((match.start(), match.end()))
            if language in {"bash", "sh", "shell"} and _COMMAND.search(body):
                found.append(Example(name, line, "shell", body))
            elif language == "python":
                found.append(Example(name, line, "python", body))
        for match in _INLINE_GOVERN.finditer(text):
            if any(start <= match.start() < end for start, end in fenced):
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append(Example(name, line, "synopsis", match.group(1)))
    return found


EXAMPLES = find_examples()


@dataclass
class Fixtures:
    """A fresh customer (with a key, a second key to rotate and revoke, a policy) and admin keys, per example."""

    url: str
    admin_key: str
    spare_admin_key_id: str
    customer: SeededCustomer
    spare_key_id: str
    policy_id: str

    def replacements(self) -> list[tuple[str, str]]:
        customer_id = str(self.customer.id)
        return [
            ("http://localhost:8000", self.url),
            ("http://127.0.0.1:8000", self.url),
            ("{YOUR_ADMIN_KEY}", self.admin_key),
            ("{POLICY_ID}", self.policy_id),
            ("<sk_live_...>", self.customer.key),
            ("sk_live_abc123...", self.customer.key),
            ("sk_live_...", self.customer.key),
            ("keyid_Xy12Ab34Cd56", self.spare_key_id),
            ("keyid_AbCdEf123456", self.spare_admin_key_id),
            ("550e8400-e29b-41d4-a716-446655440000", customer_id),
            ('"customer_id": "<id>"', f'"customer_id": "{customer_id}"'),
            ('"customer_id": "…"', f'"customer_id": "{customer_id}"'),
            ("--customer …", f"--customer {customer_id}"),
        ]

    def environment(self, server: LiveServer) -> dict[str, str]:
        return {
            **server.env,
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "API_URL": self.url,
            "ADMIN_KEY": self.admin_key,
            "CUSTOMER_ID": str(self.customer.id),
            "CUSTOMER": str(self.customer.id),
            "POLICY_ID": self.policy_id,
            "API_KEY": self.customer.key,
        }


def fill_in(text: str, fixtures: Fixtures) -> str:
    for placeholder, value in fixtures.replacements():
        text = text.replace(placeholder, value)
    return text


def skip_reason(example: Example) -> str | None:
    for (document, marker), reason in SKIPPED.items():
        if example.document == document and marker in example.text:
            return reason
    return None


def examples_of(kind: Kind) -> Iterator[Any]:
    for example in EXAMPLES:
        if example.kind == kind:
            yield pytest.param(example, id=example.id)


# Shell options as a reader's shell has them (no -e: a loop like analysts.md's ends on a failing test), but every
# curl and govern that fails marks the example failed, even inside $(...), and stops it.
PRELUDE = """set -u
failed() { echo "$1 failed with exit status $2" >&2; : > "$EXAMPLE_FAILED"; exit "$2"; }
curl() { command curl --silent --show-error --fail-with-body --max-time 30 "$@" || failed curl $?; }
govern() { command govern "$@" || failed govern $?; }
"""
