"""Every curl command in docs/operators.md runs, as written, against the API and succeeds.

Shell variables (``$ADMIN_KEY``, ``$CUSTOMER_ID``, ``$POLICY_ID``) and the example key id are replaced by real
ones first, as an operator's shell would; then the command line is split like a shell does and sent through the
app.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI

from tests.conftest import SeededCustomer

EXAMPLE_KEY_ID = "keyid_Xy12Ab34Cd56"


@dataclass
class Curl:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    data: str | None = None


def curl_commands(markdown: str) -> list[str]:
    """The curl command lines of the bash blocks, continuation lines and multi-line quoted bodies joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            if not pending and not line.strip().startswith("curl "):
                continue
            pending = f"{pending}\n{line}" if pending else line.strip()
            try:
                shlex.split(pending, comments=True)
            except ValueError:  # a quoted body goes on
                continue
            commands.append(pending)
            pending = ""
        assert not pending, pending
    return commands


def parse_curl(command: str) -> Curl:
    words = shlex.split(command, comments=True)
    assert words[0] == "curl"
    request = Curl(method="", path="")
    i = 1
    while i < len(words):
        word = words[i]
        if word == "-X":
            request.method, i = words[i + 1], i + 2
        elif word == "-H":
            name, _, value = words[i + 1].partition(":")
            request.headers[name.strip()] = value.strip()
            i += 2
        elif word == "-d":
            request.data, i = words[i + 1], i + 2
        elif word.startswith("http"):
            assert word.startswith("http://localhost:8000/"), word
            request.path, i = word.removeprefix("http://localhost:8000"), i + 1
        else:
            raise AssertionError(f"unexpected curl argument {word!r} in {command}")
    request.method = request.method or ("POST" if request.data is not None else "GET")
    return request


async def test_every_curl_in_the_operators_guide_works(
    *,
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    customer: SeededCustomer,
    pg_pool: asyncpg.Pool,
    project_root: Path,
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"bcrypt_rounds": 4})
    await pg_pool.execute("UPDATE customers SET deleted_at = now() WHERE lower(name) = 'acme ai inc'")
    headers = {"Authorization": f"Bearer {admin_key}"}
    policy = await client.post(
        "/policies",
        json={"customer_id": str(customer.id), "name": "docs", "rules": {}, "mode": "shadow"},
        headers=headers,
    )
    values = {
        "$ADMIN_KEY": admin_key,
        "$CUSTOMER_ID": str(customer.id),
        "$POLICY_ID": policy.json()["id"],
        EXAMPLE_KEY_ID: customer.key_id,
    }
    commands = curl_commands((project_root / "docs" / "operators.md").read_text())
    seen: set[tuple[str, str]] = set()
    for written in commands:
        command = written
        for name, value in values.items():
            command = command.replace(name, value)
        request = parse_curl(command)
        response = await client.request(request.method, request.path, content=request.data, headers=request.headers)
        assert response.status_code < 400, (written, response.text)
        seen.add((request.method, re.sub(r"/[0-9a-f-]{36}|/keyid_\w+", "/{id}", request.path.split("?")[0])))
    # Each kind of call the guide describes is exercised at least once.
    assert {
        ("POST", "/admin/customers"),
        ("PATCH", "/admin/customers/{id}"),
        ("POST", "/admin/keys"),
        ("GET", "/admin/keys"),
        ("GET", "/admin/keys/{id}"),
        ("POST", "/admin/keys/{id}/rotate"),
        ("POST", "/admin/keys/{id}/revoke"),
        ("POST", "/policies"),
        ("PATCH", "/policies/{id}"),
        ("GET", "/policies/{id}/versions"),
    } <= seen
