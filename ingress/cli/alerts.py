"""``govern alerts``: alerts, alert rules and webhook endpoints from the command line.

Register with ``app.add_typer(alerts_app, name="alerts")`` in ``ingress/cli/main.py``. Like the rest of ``govern`` it
talks to PostgreSQL directly (``DATABASE_URL``) through the same data functions and request models as the admin
API (``ingress.admin.alerting``), so it validates and refuses the same way. ``--json`` prints records for scripts;
errors go to stderr as ``error: <message>`` with exit status 1. A webhook's secret is printed only at creation,
as the last line.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from uuid import UUID

import pydantic
import typer
from pydantic import BaseModel

from infra.secret_box import SecretBox
from ingress.admin.alerting import alerts, rules, webhooks
from ingress.cli.support import (
    JsonOpt,
    LimitOpt,
    OffsetOpt,
    YesOpt,
    confirm as _confirm,
    fail as _fail,
    parse_uuid as _id,
    print_json as _print_json,
    print_record as _print_record,
    print_table as _print_table,
    run_with_pool as _run,
    show as _show,
    show_page as _show_page,
    validate as _validate,
)
from schemas.alerting import AlertRuleCreate, AlertRuleUpdate, AlertStatus, DeliveryStatus, RuleKind, WebhookCreate

T = TypeVar("T")

alerts_app = typer.Typer(help="Alerting: alerts, alert rules and webhook endpoints.", no_args_is_help=True)
rules_app = typer.Typer(
    help="Alert rules: a customer's own or fleet-wide; without one, the default applies.", no_args_is_help=True
)
webhooks_app = typer.Typer(help="Webhook endpoints that receive alerts, and their deliveries.", no_args_is_help=True)
alerts_app.add_typer(rules_app, name="rules")
alerts_app.add_typer(webhooks_app, name="webhooks")

CustomerOpt = Annotated[str | None, typer.Option("--customer", help="Customer id.")]
ParamsOpt = Annotated[str | None, typer.Option("--params", help="Rule parameters as a JSON object.")]
ParamsFileOpt = Annotated[Path | None, typer.Option("--params-file", help="File holding the parameters JSON.")]


class _Filters(BaseModel):
    """Options validated like the API's query parameters."""

    model_config = pydantic.ConfigDict(extra="forbid")

    customer_id: UUID | None = None
    status: AlertStatus | None = None
    rule: RuleKind | None = None
    since: datetime | None = None
    delivery_status: DeliveryStatus | None = None


# --- plumbing ------------------------------------------------------------------------------------------------


def _read_params(params: str | None, params_file: Path | None) -> dict[str, Any] | None:
    if params is not None and params_file is not None:
        _fail("give the parameters either as --params or as --params-file, not both")
    if params_file is not None:
        try:
            params = params_file.read_text()
        except OSError as exc:
            _fail(f"cannot read {params_file}: {exc.strerror}")
    if params is None:
        return None
    try:
        parsed = json.loads(params)
    except ValueError as exc:
        _fail(f"params: not valid JSON ({exc})")
    if not isinstance(parsed, dict):
        _fail("params: must be a JSON object")
    return parsed


# --- alerts ----------------------------------------------------------------------------------------------------

_ALERT_COLUMNS = ("id", "rule", "subject", "status", "severity", "opened_at", "resolved_at", "summary")


@alerts_app.command("list")
def alerts_list(
    *,
    customer: CustomerOpt = None,
    status: Annotated[str | None, typer.Option(help="open or resolved.")] = None,
    rule: Annotated[str | None, typer.Option(help="Rule kind, e.g. block_rate.")] = None,
    since: Annotated[str | None, typer.Option(help="Open at any moment since (ISO 8601).")] = None,
    unknown: Annotated[bool, typer.Option("--unknown", help="Only the 'unknown' subject's alerts.")] = False,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """List alerts, newest first."""
    f = _validate(_Filters, {"customer_id": customer, "status": status, "rule": rule, "since": since})
    page = _run(
        lambda pool, _: alerts.list_alerts(
            pool,
            customer_id=f.customer_id,
            subject="unknown" if unknown else None,
            status=f.status,
            rule=f.rule,
            since=f.since,
            limit=limit,
            offset=offset,
        )
    )
    _show_page(page, _ALERT_COLUMNS, as_json)


@alerts_app.command("show")
def alerts_show(alert_id: Annotated[str, typer.Argument(help="Alert id.")], as_json: JsonOpt = False) -> None:
    """Show one alert and its events."""
    parsed = _id(alert_id, "alert")
    found = _run(lambda pool, _: alerts.get_alert(pool, parsed))
    if as_json:
        _print_json(found)
        return
    _print_record(found, skip=("events",))
    typer.echo("")
    _print_table(found.events, ("sequence", "transition", "created_at", "published_at", "event_id"))


# --- rules -----------------------------------------------------------------------------------------------------

_RULE_COLUMNS = ("id", "customer_id", "rule", "enabled", "params", "updated_at")


@rules_app.command("list")
def rules_list(
    *,
    customer: CustomerOpt = None,
    fleet: Annotated[bool, typer.Option("--fleet", help="Only fleet-wide rules.")] = False,
    rule: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """List stored rules (customers without one of a kind get the fleet rule, else the default)."""
    f = _validate(_Filters, {"customer_id": customer, "rule": rule})
    page = _run(
        lambda pool, _: rules.list_rules(
            pool, customer_id=f.customer_id, fleet=fleet, rule=f.rule, limit=limit, offset=offset
        )
    )
    _show_page(page, _RULE_COLUMNS, as_json)


@rules_app.command("effective")
def rules_effective(customer: CustomerOpt = None, as_json: JsonOpt = False) -> None:
    """Every kind as it applies to the customer (without --customer: to customers without rules of their own)."""
    customer_id = _validate(_Filters, {"customer_id": customer}).customer_id
    found = _run(lambda pool, _: rules.effective_rules(pool, customer_id))
    if as_json:
        _print_json(found)
    else:
        _print_table(found, ("rule", "enabled", "source", "params"))


@rules_app.command("create")
def rules_create(
    *,
    rule: Annotated[str, typer.Option("--rule", help="Kind: block_rate, high_risk, personal_data, ...")],
    customer: Annotated[
        str | None, typer.Option("--customer", help="Customer id; leave out for a fleet-wide rule.")
    ] = None,
    params: ParamsOpt = None,
    params_file: ParamsFileOpt = None,
    enabled: Annotated[bool, typer.Option("--enabled/--disabled", help="Disabled: the kind is off.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Create a rule for a customer, or for the fleet."""
    data = {
        "customer_id": customer,
        "rule": rule,
        "enabled": enabled,
        "params": _read_params(params, params_file) or {},
    }
    request = _validate(AlertRuleCreate, data)
    created = _run(lambda pool, _: rules.create_rule(pool, request))
    _show(created, as_json)


@rules_app.command("update")
def rules_update(
    *,
    rule_id: Annotated[str, typer.Argument(help="Rule id.")],
    params: ParamsOpt = None,
    params_file: ParamsFileOpt = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled", help="Turn the rule on or off.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a rule; --params replaces the parameters whole."""
    parsed = _id(rule_id, "alert rule")
    data: dict[str, Any] = {}
    new_params = _read_params(params, params_file)
    if new_params is not None:
        data["params"] = new_params
    if enabled is not None:
        data["enabled"] = enabled
    request = _validate(AlertRuleUpdate, data)
    updated = _run(lambda pool, _: rules.update_rule(pool, parsed, request))
    _show(updated, as_json)


@rules_app.command("delete")
def rules_delete(rule_id: Annotated[str, typer.Argument(help="Rule id.")], yes: YesOpt = False) -> None:
    """Delete a rule: the fleet rule or the default applies again."""
    parsed = _id(rule_id, "alert rule")
    _confirm(f"Delete alert rule {parsed}?", yes)
    _run(lambda pool, _: rules.delete_rule(pool, parsed))
    typer.echo(f"alert rule {parsed} deleted")


# --- webhooks --------------------------------------------------------------------------------------------------

_WEBHOOK_COLUMNS = ("id", "customer_id", "url", "active", "created_at", "description")
_DELIVERY_COLUMNS = (
    "id",
    "transition",
    "sequence",
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "created_at",
)


@webhooks_app.command("create")
def webhooks_create(
    *,
    url: Annotated[str, typer.Option("--url", help="Where alerts are POSTed (https:// outside local runs).")],
    customer: Annotated[
        str | None, typer.Option("--customer", help="Customer id; leave out for an operator endpoint (every alert).")
    ] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Register an endpoint. Its signing secret is printed once, as the last line."""
    request = _validate(WebhookCreate, {"customer_id": customer, "url": url, "description": description})
    created = _run(
        lambda pool, s: webhooks.create_webhook(
            pool, request, require_https=s.environment in {"staging", "production"}, box=SecretBox.from_settings(s)
        )
    )
    if as_json:
        _print_json(created)
        return
    _print_record(created, skip=("secret",))
    typer.echo("the signing secret below is shown only this once; give it to the endpoint's owner:")
    typer.echo(created.secret)


@webhooks_app.command("list")
def webhooks_list(
    customer: CustomerOpt = None, limit: LimitOpt = 100, offset: OffsetOpt = 0, as_json: JsonOpt = False
) -> None:
    """List endpoints (never their secrets)."""
    customer_id = _validate(_Filters, {"customer_id": customer}).customer_id
    page = _run(lambda pool, _: webhooks.list_webhooks(pool, customer_id=customer_id, limit=limit, offset=offset))
    _show_page(page, _WEBHOOK_COLUMNS, as_json)


@webhooks_app.command("delete")
def webhooks_delete(webhook_id: Annotated[str, typer.Argument(help="Webhook id.")], yes: YesOpt = False) -> None:
    """Delete an endpoint: nothing more is sent to it; pending deliveries are cancelled."""
    parsed = _id(webhook_id, "webhook")
    _confirm(f"Delete webhook {parsed}?", yes)
    cancelled = _run(lambda pool, _: webhooks.delete_webhook(pool, parsed))
    typer.echo(f"webhook {parsed} deleted; {cancelled} pending delivery(ies) cancelled")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    *,
    webhook_id: Annotated[str, typer.Argument(help="Webhook id.")],
    status: Annotated[str | None, typer.Option(help="pending, delivered, failed or cancelled.")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """An endpoint's deliveries, newest first (--json includes every attempt)."""
    parsed = _id(webhook_id, "webhook")
    delivery_status = _validate(_Filters, {"delivery_status": status}).delivery_status
    page = _run(
        lambda pool, _: webhooks.list_deliveries(pool, parsed, status=delivery_status, limit=limit, offset=offset)
    )
    _show_page(page, _DELIVERY_COLUMNS, as_json)
