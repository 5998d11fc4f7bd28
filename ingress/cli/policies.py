"""``govern policies``: create, list, show, update, delete, backtest and the version history of policies."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ingress.admin.tenancy import policies
from ingress.admin.tenancy.errors import parse_id
from ingress.cli.support import (
    CustomerFilter,
    JsonOpt,
    LimitOpt,
    OffsetOpt,
    YesOpt,
    confirm as _confirm,
    fail as _fail,
    parse_uuid as _parse_id,
    print_json as _print_json,
    print_table as _print_table,
    run_with_pool as _run,
    show as _show,
    show_page as _show_page,
    validate as _validate,
)
from schemas.admin import (
    PolicyCreate,
    PolicyUpdate,
)

T = TypeVar("T")

policies_app = typer.Typer(help="Policies and their version history.", no_args_is_help=True)

_POLICY_COLUMNS = ("id", "name", "active", "mode", "version", "updated_at")
RulesOpt = Annotated[str | None, typer.Option("--rules", help="Rules as a JSON object.")]
RulesFileOpt = Annotated[Path | None, typer.Option("--rules-file", help="File holding the rules JSON ('-': stdin).")]


def _read_rules(rules: str | None, rules_file: Path | None, *, required: bool) -> Any:
    if rules is not None and rules_file is not None:
        _fail("give the rules either as --rules or as --rules-file, not both")
    if rules_file is not None:
        try:
            rules = sys.stdin.read() if str(rules_file) == "-" else rules_file.read_text()
        except OSError as exc:
            _fail(f"cannot read {rules_file}: {exc.strerror}")
    if rules is None:
        if required:
            _fail("give the rules as --rules '{...}' or --rules-file PATH")
        return None
    try:
        return json.loads(rules)
    except ValueError as exc:
        _fail(f"rules: not valid JSON ({exc})")


@policies_app.command("create")
def policies_create(
    *,
    customer: Annotated[str, typer.Option("--customer", help="Customer id.")],
    name: Annotated[str, typer.Option(help="Policy name, unique among the customer's policies.")],
    rules: RulesOpt = None,
    rules_file: RulesFileOpt = None,
    mode: Annotated[str, typer.Option(help="enforce, or shadow (decide and record, never block).")] = "enforce",
    active: Annotated[bool, typer.Option("--active/--inactive", help="Whether the policy applies.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Create a policy (version 1)."""
    data = {
        "customer_id": customer,
        "name": name,
        "rules": _read_rules(rules, rules_file, required=True),
        "mode": mode,
        "active": active,
    }
    request = _validate(PolicyCreate, data)
    created = _run(lambda pool, _: policies.create_policy(pool, request))
    _show(created, as_json)


@policies_app.command("list")
def policies_list(
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's policies.")] = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """List live policies."""
    customer_id = _validate(CustomerFilter, {"customer_id": customer}).customer_id
    page = _run(lambda pool, _: policies.list_policies(pool, customer_id=customer_id, limit=limit, offset=offset))
    _show_page(page, _POLICY_COLUMNS, as_json)


@policies_app.command("show")
def policies_show(policy_id: Annotated[str, typer.Argument(help="Policy id.")], as_json: JsonOpt = False) -> None:
    """Show one policy with its rules."""
    found = _run(lambda pool, _: policies.get_policy(pool, parse_id(policy_id, "policy")))
    _show(found, as_json)


@policies_app.command("update")
def policies_update(
    *,
    policy_id: Annotated[str, typer.Argument(help="Policy id.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    rules: RulesOpt = None,
    rules_file: RulesFileOpt = None,
    mode: Annotated[str | None, typer.Option(help="enforce or shadow.")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Turn the policy on or off.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a policy; what is left out stays. Each change is a new version. --rules replaces the rules whole."""
    data: dict[str, Any] = {"name": name, "rules": _read_rules(rules, rules_file, required=False)}
    data |= {"mode": mode, "active": active}
    request = _validate(PolicyUpdate, {k: v for k, v in data.items() if v is not None})
    updated = _run(lambda pool, _: policies.update_policy(pool, parse_id(policy_id, "policy"), request))
    _show(updated, as_json)


@policies_app.command("delete")
def policies_delete(policy_id: Annotated[str, typer.Argument(help="Policy id.")], yes: YesOpt = False) -> None:
    """Delete a policy: it stops applying at once; its history stays."""
    parsed = _parse_id(policy_id, "policy")
    _confirm(f"Delete policy {parsed}?", yes)
    _run(lambda pool, _: policies.delete_policy(pool, parsed))
    typer.echo(f"policy {parsed} deleted")


@policies_app.command("backtest")
def policies_backtest(  # noqa: PLR0917 - typer options are parameters
    policy_id: Annotated[str, typer.Argument(help="Policy id.")],
    rules: Annotated[str | None, typer.Option(help="Candidate rules as JSON.")] = None,
    rules_file: Annotated[Path | None, typer.Option(help="Candidate rules from a JSON file ('-' for stdin).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="ISO 8601 start (default: 7 days ago).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO 8601 end (default: now).")] = None,
    api_url: Annotated[str, typer.Option(envvar="API_URL", help="The API, which owns the audit store.")] = (
        "http://127.0.0.1:8000"
    ),
    admin_key_file: Annotated[Path, typer.Option(help="File holding an admin key.")] = Path(".state/admin-key"),
    as_json: JsonOpt = False,
) -> None:
    """Replay the stored decisions of the policy's customer under candidate rules and count the flips."""
    import httpx  # the backtest runs where the audit store is: in the API process

    candidate = _read_rules(rules, rules_file, required=True)
    key = os.environ.get("GOVERNANCE_ADMIN_KEY") or ""
    if not key:
        try:
            key = admin_key_file.read_text().strip()
        except OSError:
            _fail(f"no admin key: set GOVERNANCE_ADMIN_KEY or --admin-key-file (cannot read {admin_key_file})")
    body: dict[str, Any] = {"rules": candidate}
    if start:
        body["from"] = start
    if end:
        body["to"] = end
    try:
        response = httpx.post(
            f"{api_url.rstrip('/')}/admin/policies/{policy_id}/backtest",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the API at {api_url}: {type(exc).__name__}")
    report = response.json()
    if response.status_code != 200:
        _fail(report.get("message", f"HTTP {response.status_code}"))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    flips = report["flips"]
    typer.echo(f"decisions replayed: {report['decisions']} (reproduced exactly: {report['reproduced']})")
    typer.echo(f"would flip: allow→block {flips['allow_to_block']}, block→allow {flips['block_to_allow']}")
    for title, table in (("by rule", report["by_rule"]), ("by operation type", report["by_operation_type"])):
        for name, counts in table.items():
            typer.echo(
                f"  {title} {name}: allow→block {counts['allow_to_block']}, block→allow {counts['block_to_allow']}"
            )


@policies_app.command("versions")
def policies_versions(policy_id: Annotated[str, typer.Argument(help="Policy id.")], as_json: JsonOpt = False) -> None:
    """A policy's version history, oldest first."""
    history = _run(lambda pool, _: policies.list_versions(pool, parse_id(policy_id, "policy")))
    if as_json:
        _print_json(history)
    else:
        _print_table(history, ("version", "name", "active", "mode", "created_at", "rules"))


# --- admin keys ------------------------------------------------------------------------------------------------
