"""Every fenced shell example in README.md and docs/ (a block that calls ``curl`` or ``govern``) runs against a real
ingress process, by bash as written: any ``curl`` (``--fail-with-body``: an HTTP error too) or ``govern`` in it
that fails fails the example. And the README's first check is blocked as it says, then allowed under its policy.

The examples are found, not listed (``tests/support/docs_examples.py``); the Python blocks run in
``test_docs_python_examples.py``, the inline ``govern …`` synopses are checked in ``test_docs_govern_synopses.py``.
Before running, only what a reader would fill in is replaced: ``http://localhost:8000`` by the test server's
address, and the placeholders (``$ADMIN_KEY``, ``<id>``, ``sk_live_...``, ``keyid_…``, ``{POLICY_ID}``, ``…``) by a
fresh customer, key, policy and admin key made for the example (``tests/e2e/conftest.py``). Examples that need
something the test stack lacks are in ``SKIPPED`` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import LiveServer
from tests.support.docs_examples import (
    EXAMPLES,
    PRELUDE,
    ROOT,
    Example,
    Fixtures,
    examples_of,
    fill_in,
    skip_reason,
)


def test_the_documents_have_examples_of_every_kind() -> None:
    """The extraction itself works (a broken pattern would make every example test vanish)."""
    kinds = {(example.document, example.kind) for example in EXAMPLES}
    assert ("README.md", "shell") in kinds
    assert ("docs/operators.md", "shell") in kinds
    assert ("docs/operators.md", "synopsis") in kinds
    assert ("docs/receipts.md", "python") in kinds
    assert len([e for e in EXAMPLES if e.kind == "shell"]) >= 20


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


@pytest.mark.parametrize("example", list(examples_of("shell")))
async def test_shell_example_runs(
    example: Example, fixtures: Fixtures, workdir: Path, live_server: LiveServer, pg_pool: asyncpg.Pool
) -> None:
    if reason := skip_reason(example):
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
