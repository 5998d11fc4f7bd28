"""Every curl, ``govern`` and Python example in README.md and docs/ runs against a real ingress process.

The examples are found, not listed: each fenced shell block that calls ``curl`` or ``govern`` is run by bash as
written, and any ``curl`` (``--fail-with-body``: an HTTP error too) or ``govern`` in it that fails fails the
example; each Python block is executed and, where it defines a function, called on real data; each inline
``govern …`` synopsis must name a real command and only options that command has. Before running, only what a
reader would fill in is replaced: ``http://localhost:8000`` by the test server's address, and the placeholders
(``$ADMIN_KEY``, ``<id>``, ``sk_live_...``, ``keyid_…``, ``{POLICY_ID}``, ``…``) by a fresh customer, key, policy
and admin key made for the example. Examples that need something the test stack lacks are in ``SKIPPED`` with the
reason.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import os
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from ingress.auth.keys import parse_key
from ingress.cli.main import app as govern_app
from tests.conftest import LiveServer, SeededCustomer, insert_admin_key, insert_customer

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


def test_the_documents_have_examples_of_every_kind() -> None:
    """The extraction itself works (a broken pattern would make every example test vanish)."""
    kinds = {(example.document, example.kind) for example in EXAMPLES}
    assert ("README.md", "shell") in kinds
    assert ("docs/operators.md", "shell") in kinds
    assert ("docs/operators.md", "synopsis") in kinds
    assert ("docs/receipts.md", "python") in kinds
    assert len([e for e in EXAMPLES if e.kind == "shell"]) >= 20


# --- what each example gets --------------------------------------------------------------------------------------


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


@pytest.fixture
async def fixtures(live_server: LiveServer, pg_pool: asyncpg.Pool) -> Fixtures:
    # The guide's customer name is unique among live customers; every example that creates it starts afresh.
    await pg_pool.execute("UPDATE customers SET deleted_at = now() WHERE lower(name) = 'acme ai inc'")
    customer = await insert_customer(pg_pool, tier="pro")
    spare = await insert_customer(pg_pool)  # a second key of the same customer, for rotate and revoke examples
    spare_key_id = await pg_pool.fetchval(
        "UPDATE api_keys SET customer_id = $1, name = 'spare' WHERE key_id = $2 RETURNING key_id",
        customer.id,
        spare.key_id,
    )
    admin_key = await insert_admin_key(pg_pool, "docs")
    spare_admin = await insert_admin_key(pg_pool, "docs-spare")
    spare_admin_key_id = parse_key(spare_admin).key_id
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        policy = await http.post(
            "/policies",
            json={"customer_id": str(customer.id), "name": "docs", "rules": {}, "mode": "shadow"},
            headers={"Authorization": f"Bearer {admin_key}"},
        )
    assert policy.status_code == 201, policy.text
    return Fixtures(live_server.url, admin_key, spare_admin_key_id, customer, spare_key_id, policy.json()["id"])


@pytest.fixture
def workdir(tmp_path: Path, fixtures: Fixtures) -> Path:
    """The folder an example runs in: what the examples read from files is there."""
    state = tmp_path / ".state"
    state.mkdir()
    (state / "admin-key").write_text(fixtures.admin_key + "\n")
    (tmp_path / "request.json").write_text(json.dumps(CHECK_BODY))
    (tmp_path / "policy.json").write_text(json.dumps(POLICY_RULES))
    return tmp_path


@contextlib.asynccontextmanager
async def fleet_rules_set_aside(pg_pool: asyncpg.Pool) -> Any:
    """An example may create fleet-wide alert rules (one per kind): the fleet's rules are set aside while it runs
    and put back afterwards, so it neither meets another test's rule nor leaves its own behind."""
    saved = await pg_pool.fetch(
        "DELETE FROM alert_rules WHERE customer_id IS NULL "
        "RETURNING id, kind, enabled, params::text AS params, created_at, updated_at"
    )
    try:
        yield
    finally:
        await pg_pool.execute("DELETE FROM alert_rules WHERE customer_id IS NULL")
        for row in saved:
            await pg_pool.execute(
                "INSERT INTO alert_rules (id, customer_id, kind, enabled, params, created_at, updated_at) "
                "VALUES ($1, NULL, $2, $3, $4::text::jsonb, $5, $6)",
                *row.values(),
            )


def _skip_reason(example: Example) -> str | None:
    for (document, marker), reason in SKIPPED.items():
        if example.document == document and marker in example.text:
            return reason
    return None


def _examples(kind: Kind) -> Iterator[Any]:
    for example in EXAMPLES:
        if example.kind == kind:
            yield pytest.param(example, id=example.id)


# --- shell blocks -------------------------------------------------------------------------------------------------

# Shell options as a reader's shell has them (no -e: a loop like analysts.md's ends on a failing test), but every
# curl and govern that fails marks the example failed, even inside $(...), and stops it.
PRELUDE = """set -u
failed() { echo "$1 failed with exit status $2" >&2; : > "$EXAMPLE_FAILED"; exit "$2"; }
curl() { command curl --silent --show-error --fail-with-body --max-time 30 "$@" || failed curl $?; }
govern() { command govern "$@" || failed govern $?; }
"""


@pytest.mark.parametrize("example", list(_examples("shell")))
async def test_shell_example_runs(
    example: Example, fixtures: Fixtures, workdir: Path, live_server: LiveServer, pg_pool: asyncpg.Pool
) -> None:
    if reason := _skip_reason(example):
        pytest.skip(reason)
    script = PRELUDE + fill_in(example.text, fixtures).replace(".venv/bin/govern", "govern")
    marker = workdir / "failed"
    async with fleet_rules_set_aside(pg_pool):
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", script],
            cwd=workdir,
            env={**fixtures.environment(live_server), "EXAMPLE_FAILED": str(marker)},
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    output = f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert done.returncode == 0, f"{example.id} failed ({done.returncode}):\n{output}"
    assert not marker.exists(), f"{example.id}: a command failed:\n{output}"  # also inside $(...)


# --- inline govern synopses -------------------------------------------------------------------------------------


def _commands(synopsis: str) -> list[list[str]]:
    """The command paths a synopsis names: ``govern alerts rules list/create`` names two."""
    words = shlex.split(synopsis.replace("\\|", "|").replace("…", ""), comments=False)
    path: list[str] = []
    for word in words[1:]:  # after "govern"
        if not re.fullmatch(r"[a-z][a-z-]*(/[a-z][a-z-]*)*", word):
            break
        path.append(word)
    alternatives = [[]]
    for word in path:
        alternatives = [[*prefix, choice] for prefix in alternatives for choice in word.split("/")]
    return alternatives


@pytest.mark.parametrize("example", list(_examples("synopsis")))
def test_govern_synopsis_names_real_commands_and_options(example: Example) -> None:
    runner = CliRunner()
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", example.text))
    commands = _commands(example.text.removeprefix(".venv/bin/"))
    assert commands, f"no command in {example.text!r}"
    assert commands[0], f"no command in {example.text!r}"
    seen = ""
    for command in commands:
        result = runner.invoke(govern_app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert result.exit_code == 0, f"{example.id}: govern {' '.join(command)} --help: {result.output[-1500:]}"
        seen += result.output
    missing = {option for option in options if option not in seen}
    assert not missing, f"{example.id}: options the command does not have: {sorted(missing)}"


# --- Python blocks ----------------------------------------------------------------------------------------------


def _check(fixtures: Fixtures) -> httpx.Response:
    response = httpx.post(
        f"{fixtures.url}/v1/check",
        json=CHECK_BODY,
        headers={"Authorization": f"Bearer {fixtures.customer.key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def _run_python(code: str, example: Example, namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(code, example.document, "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


async def _python_faststream_subscriber(example: Example, fixtures: Fixtures, live_server: LiveServer) -> None:
    """The topics guide's FastStream subscriber prints a decision made after it subscribed."""
    env = live_server.env
    code = (
        example.text.replace("127.0.0.1:9092", env["KAFKA_BOOTSTRAP_SERVERS"])
        .replace('"governance.decisions.v1"', repr(env["DECISIONS_TOPIC"]))
        .replace('"my-service"', repr(f"docs-example-{uuid.uuid4().hex[:8]}"))
    )
    printed: list[str] = []

    def capture(*values: object, **_: object) -> None:
        printed.append(" ".join(str(v) for v in values))

    namespace = _run_python(code, example, {"__name__": "docs_example", "print": capture})
    broker = namespace["broker"]
    async with broker:
        await broker.start()
        deadline = time.monotonic() + 60
        while not any(str(fixtures.customer.id) in line for line in printed):
            assert time.monotonic() < deadline, "the subscriber printed no decision"
            await asyncio.to_thread(_check, fixtures)  # auto_offset_reset=latest: keep deciding until assigned
            await asyncio.sleep(1)
    assert any(" allow " in f" {line} " or " block " in f" {line} " for line in printed), printed


@pytest.mark.parametrize("example", list(_examples("python")))
async def test_python_example_runs(example: Example, fixtures: Fixtures, live_server: LiveServer) -> None:
    if reason := _skip_reason(example):
        pytest.skip(reason)
    code = fill_in(example.text, fixtures)
    if "from faststream import FastStream" in code:
        await _python_faststream_subscriber(example, fixtures, live_server)
        return
    if "def verify_signature" in code:
        from workers.webhooks.signing import sign

        verify = _run_python(code, example, {"__name__": "docs_example"})["verify_signature"]
        body = b'{"event_type": "alert"}'
        assert verify("whsec_docs", sign("whsec_docs", int(time.time()), body), body)
        assert not verify("whsec_docs", sign("whsec_docs", int(time.time()), body), body + b" ")
        return
    if "def verify(receipt" in code:
        verify = _run_python(code, example, {"__name__": "docs_example"})["verify"]
        answer = (await asyncio.to_thread(_check, fixtures)).json()
        async with httpx.AsyncClient(base_url=fixtures.url, timeout=10) as http:
            keys = (await http.get("/v1/receipts/keys")).json()["keys"]
        assert verify(answer["receipt"], keys)
        assert verify(answer["receipt"], keys, CHECK_BODY)
        assert not verify(answer["receipt"], keys, {**CHECK_BODY, "context": {}})
        return
    # A fragment: it runs with what its text expects to exist (a check's response, the time module).
    response = await asyncio.to_thread(_check, fixtures)
    _run_python(code, example, {"__name__": "docs_example", "response": response, "time": time, **vars(builtins)})


# --- what the README says about the first check ------------------------------------------------------------------


def _run_shell(script: str, fixtures: Fixtures, workdir: Path, server: LiveServer) -> str:
    marker = workdir / "failed"
    done = subprocess.run(
        ["bash", "-c", PRELUDE + fill_in(script, fixtures)],
        cwd=workdir,
        env={**fixtures.environment(server), "EXAMPLE_FAILED": str(marker)},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not marker.exists(), done.stderr[-2000:]
    return done.stdout


async def test_readme_first_check_is_blocked_as_it_says_and_its_policy_allows_it(
    fixtures: Fixtures, workdir: Path, live_server: LiveServer
) -> None:
    readme = (ROOT / "README.md").read_text()
    onboarding, policy = [e.text for e in EXAMPLES if e.document == "README.md" and e.kind == "shell"][:2]
    check = onboarding[onboarding.index("curl -X POST http://localhost:8000/v1/check") :]

    first = json.loads(await asyncio.to_thread(_run_shell, check, fixtures, workdir, live_server))
    assert first["allowed"] is False
    assert first["risk_score"] == 50
    assert f'"reason": "{first["reason"]}"' in readme  # the README quotes the reason as the API gives it

    await asyncio.to_thread(_run_shell, policy, fixtures, workdir, live_server)
    deadline = time.monotonic() + 15  # the new policy reaches the API process through NOTIFY: waited for, bounded
    while True:
        again = json.loads(await asyncio.to_thread(_run_shell, check, fixtures, workdir, live_server))
        if again["allowed"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert again["allowed"] is True
    assert again["risk_score"] == 0
