"""Scenario 13 of docs/reliability.md: schemathesis against our OpenAPI document, every check, bounded.

The server runs on a PostgreSQL database of this test's own (created in the shared cluster, dropped after), so the
admin operations schemathesis generates (create, patch, delete customers; issue and revoke keys) touch nothing of
any other test. Two runs: the operator surface with an admin key, the customer surface with a customer key.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from infra.migrate import migrate_postgres
from infra.postgres import build_postgres_pool
from ingress.settings import IngressSettings
from tests.conftest import insert_admin_key, insert_customer
from tests.support.reliability import ROOT, figures, ingress, isolated_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPORTS = ROOT / "test-artifacts" / "reliability" / "schemathesis"
MAX_EXAMPLES = 8
CUSTOMER_TIME_S, ADMIN_TIME_S = 15, 45  # each run's time budget
CUSTOMER_SURFACE = r"^/v1/"


Finding = tuple[str, str]  # (operation, check)

# What schemathesis reports that this scenario does not fix, each with its reason. Only these three checks may
# appear here: a 5xx, a response off its schema, an undocumented status or content type fails the test outright.
TOLERATED_CHECKS = {"positive_data_acceptance", "negative_data_rejection", "allow_header_conformance"}
_STRICT = "counts are strict JSON integers on purpose: 3.0 is refused (422 naming the field), though JSON Schema"
_STRICT += " calls it an integer (schemas/admin.py, schemas/policy_rules.py, schemas/alerting.py)"
_NAMES = "names are stripped of surrounding white space, so a name of spaces only is empty (422 naming it)"
_PARAMS = "an alert rule's `params` is documented as an object; which fields it takes depends on `rule` (422 names"
_PARAMS += " the field)"
_URL = "a webhook URL must name a host: the documented pattern cannot say everything `_valid_url` checks"
_RANGE = "cross-field rule the schema cannot state: 'to' must be after 'from' (422 names it); moments outside the"
_RANGE += " years 1900-2299, which the audit log cannot hold, are refused"
KNOWN: dict[Finding, str] = {
    ("GET /admin/analytics/summary", "positive_data_acceptance"): _RANGE,
    ("GET /logs", "positive_data_acceptance"): _RANGE + "; a cursor is opaque: any string is schema-valid",
    ("POST /logs", "positive_data_acceptance"): _RANGE,
    ("POST /v1/check", "negative_data_rejection"): "schemathesis breaks one branch of an `anyOf` (`metadata`: object"
    " or null; `filename`: string or null) into a value the other branch allows, so the request it calls invalid is"
    " valid and answered 200",
    ("GET /v1/decisions", "positive_data_acceptance"): _RANGE + "; a cursor is opaque: any string is schema-valid",
    ("GET /logs", "negative_data_rejection"): "a blank field means absent (HTML forms and curl -d send them), so"
    " `format=` is taken as the default rather than refused: by design (ingress/audit/filters.py)",
    ("PATCH /admin/customers/{customer_id}", "positive_data_acceptance"): _NAMES,
    ("PATCH /admin/policies/{policy_id}", "positive_data_acceptance"): _NAMES + "; " + _STRICT,
    ("PATCH /policies/{policy_id}", "positive_data_acceptance"): _NAMES + "; " + _STRICT,
    ("POST /admin/customers", "positive_data_acceptance"): _NAMES,
    ("POST /admin/keys", "positive_data_acceptance"): _NAMES,
    ("POST /admin/policies", "positive_data_acceptance"): _NAMES + "; " + _STRICT,
    ("POST /policies", "positive_data_acceptance"): _NAMES + "; " + _STRICT,
    ("PUT /admin/policies/{policy_id}", "positive_data_acceptance"): _NAMES + "; " + _STRICT,
    ("PUT /policies/{policy_id}", "positive_data_acceptance"): _NAMES + "; " + _STRICT,
    ("POST /admin/policies/{policy_id}/backtest", "positive_data_acceptance"): "`rules` is documented as any object"
    " and validated as a policy's rules; " + _RANGE,
    ("GET /admin/alert-rules/effective", "allow_header_conformance"): "the path also matches /admin/alert-rules/"
    "{rule_id}, which does serve PATCH and DELETE there: Allow is truthful, the document lists GET",
    ("PATCH /admin/alert-rules/{rule_id}", "positive_data_acceptance"): _PARAMS + "; " + _STRICT,
    ("POST /admin/alert-rules", "positive_data_acceptance"): _PARAMS + "; " + _STRICT,
    ("POST /admin/webhooks", "positive_data_acceptance"): _URL,
    ("POST /admin/keys/{key_ref}/rotate", "positive_data_acceptance"): _STRICT,
}

# Stateful checks whose every failure is looked at one by one (`_explained`): schemathesis links a resource to the
# paths below the one that created it, and so does not see a customer's DELETE removing its policies and its
# effective alert rules, nor `/policies/{id}` and `/admin/policies/{id}` naming one policy.
EXPLAINED_CHECKS = {"ensure_resource_availability", "use_after_free"}
# Histories stay readable after their resource is deleted, on purpose (docs/operators.md, docs/alerting.md).
HISTORY_PATHS = {
    "/admin/policies/{policy_id}/versions",
    "/policies/{policy_id}/versions",
    "/admin/webhooks/{webhook_id}/deliveries",
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
async def own_database(settings: IngressSettings, migrated: str) -> AsyncIterator[str]:
    name = f"governance_rel_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(settings.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{settings.database_url.rpartition('/')[0]}/{name}"
    await migrate_postgres(url)
    yield url
    admin = await asyncpg.connect(settings.database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _schemathesis(
    url: str, key: str, report: str, max_time_s: int, *filters: str
) -> tuple[int, str, Counter[Finding], Counter[str]]:
    """One bounded ``st run`` with every check: its exit code, its output, failures per (operation, check), and the
    stateful findings `_explained` accounts for, per reason."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    ndjson = REPORTS / f"{report}.ndjson"
    ndjson.unlink(missing_ok=True)  # an earlier run's report never stands in for this one's
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(max_time_s),
        "--request-timeout",
        "10",
        "--workers",
        "1",
        "--rate-limit",
        "40/s",
        "--seed",
        "13",
        "--no-color",
        "--header",
        f"Authorization: Bearer {key}",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(ndjson),
        "--suppress-health-check",
        "all",
        # No example database: a run here generates what a fresh clone's run generates.
        "--generation-database",
        "none",
        *filters,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=max_time_s * 3, check=False, cwd=ROOT)
    (REPORTS / f"{report}.txt").write_text(result.stdout + result.stderr)
    failures: Counter[Finding] = Counter()
    explained: Counter[str] = Counter()
    # One event per "\n": JSON strings may hold U+2028 and the like, which str.splitlines() would also split on.
    for line in ndjson.read_bytes().decode().split("\n") if ndjson.exists() else []:
        try:
            finished = line.strip() and json.loads(line).get("ScenarioFinished")
        except json.JSONDecodeError:
            # When the time budget runs out, the scenario being written can be cut by the run's last event.
            explained["unreadable report line (a scenario cut at the time limit)"] += 1
            continue
        if not finished:
            continue
        recorder = finished["recorder"]
        for case_id, checks in recorder.get("checks", {}).items():
            for check in checks:
                if check["status"] != "failure":
                    continue
                reason = _explained(recorder, case_id) if check["name"] in EXPLAINED_CHECKS else None
                if reason:
                    explained[f"{check['name']}: {reason}"] += 1
                else:
                    failures[(_operation(recorder, case_id), check["name"])] += 1
    return result.returncode, result.stdout + result.stderr, failures, explained


def _operation(recorder: dict[str, Any], case_id: str) -> str:
    """The operation a finding is on. The stateful phase labels every scenario "Stateful tests"; its cases name
    the operation they called, so a stateful finding is judged like the same finding met one call at a time."""
    if recorder["label"] != "Stateful tests":
        return str(recorder["label"])
    case = recorder["cases"][case_id]["value"]
    return f"{case['method']} {case['path']}"


def _explained(recorder: dict[str, Any], case_id: str) -> str | None:
    """Why a stateful finding on this case is the API doing what it documents, or None when it is not.

    A 404 for a resource "just created" is explained by an earlier successful DELETE of an id that the request, or
    the request and response that created the resource, name: its customer (deleted customers take their policies,
    rules and webhooks with them) or the resource itself through its other path. A 2xx after a DELETE is explained
    when the read is one of the histories kept on purpose.
    """
    case = recorder["cases"][case_id]["value"]
    if case["path"] in HISTORY_PATHS and case["method"] == "GET":
        return "a history stays readable after its resource is deleted"
    interactions: dict[str, Any] = recorder.get("interactions", {})
    this = interactions.get(case_id)
    if this is None or this["response"] is None or this["response"]["status_code"] != 404:
        return None
    named = set(_UUID.findall(_text(this)))
    parent_id = recorder["cases"][case_id].get("parent_id")
    if parent_id in interactions:
        named |= set(_UUID.findall(_text(interactions[parent_id])))
    for earlier in interactions.values():
        request, response = earlier["request"], earlier["response"]
        if (
            request["method"] == "DELETE"
            and response is not None
            and 200 <= response["status_code"] < 300
            and earlier["timestamp"] < this["timestamp"]
            and set(_UUID.findall(request["uri"])) & named
        ):
            return "a 404 after its customer, or the resource through its other path, was deleted"
    return None


def _text(interaction: dict[str, Any]) -> str:
    """An interaction's request URI and both bodies, for the ids they name."""
    parts = [interaction["request"]["uri"]]
    for body in (interaction["request"].get("body"), (interaction["response"] or {}).get("content")):
        if isinstance(body, dict) and "$base64" in body:
            parts.append(base64.b64decode(body["$base64"]).decode("utf-8", "replace"))
    return " ".join(parts)


async def test_13_schemathesis_every_check_no_5xx_every_response_matches_its_schema(
    settings: IngressSettings, own_database: str, tmp_path: Path
) -> None:
    pool = await build_postgres_pool(own_database, min_size=1, max_size=2)
    try:
        admin_key = await insert_admin_key(pool)
        customer = await insert_customer(pool, tier="pro")
    finally:
        await pool.close()
    env = isolated_env(DATABASE_URL=own_database)
    with ingress(settings, tmp_path / "server", **env) as server:
        # The customer surface first: the admin run's stateful phase deletes customers it finds, keys included.
        customer_code, customer_out, customer_failures, customer_explained = _schemathesis(
            server.url, customer.key, "customer", CUSTOMER_TIME_S, "--include-path-regex", CUSTOMER_SURFACE
        )
        admin_code, admin_out, admin_failures, admin_explained = _schemathesis(
            server.url, admin_key, "admin", ADMIN_TIME_S, "--exclude-path-regex", CUSTOMER_SURFACE
        )
        log = server.log()
    failures = customer_failures + admin_failures
    explained = customer_explained + admin_explained
    new = {finding: n for finding, n in failures.items() if finding not in KNOWN}
    cases = [line.strip() for line in (customer_out + admin_out).splitlines() if " generated, " in line]
    figures(
        13,
        "schemathesis, every check",
        load=f"{MAX_EXAMPLES} examples per operation, {CUSTOMER_TIME_S}s customer + {ADMIN_TIME_S}s admin, 40/s",
        cases=cases,
        exit_codes=f"customer {customer_code}, admin {admin_code}",
        server_errors=sum(n for (_, check), n in failures.items() if check == "not_a_server_error"),
        schema_violations=sum(n for (_, check), n in failures.items() if check not in TOLERATED_CHECKS),
        known_findings=sum(n for finding, n in failures.items() if finding in KNOWN),
        explained_stateful=dict(explained) or 0,
        new_findings=new or 0,
        server_tracebacks=log.count("Traceback"),
    )
    assert len(cases) == 2, "a run did not generate its cases (schema not loaded?)"
    assert {customer_code, admin_code} <= {0, 1}, "schemathesis itself failed"  # 1: failures found
    assert "Authentication failed" not in customer_out, "the customer key stopped working mid-run"
    unreadable = sum(n for reason, n in explained.items() if reason.startswith("unreadable"))
    assert unreadable <= 2, "the reports could not be read"  # at most the one scenario cut per run
    tracebacks = log[log.find("Traceback") :][:4000] if "Traceback" in log else ""
    assert not new, f"findings not known: {new}\n{tracebacks}\n{admin_out[-4000:]}\n{customer_out[-2000:]}"
    assert all(check in TOLERATED_CHECKS for _, check in KNOWN)
    assert "Traceback" not in log
