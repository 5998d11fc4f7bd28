"""``govern``: the operator CLI. It talks to PostgreSQL directly (``DATABASE_URL``), through the same
``ingress.admin.tenancy`` functions and request models as the admin API, so it validates and refuses the same way.

Each command group is a sub-typer (``customers``, ``keys``, ``policies``, ``admin``, ``db``); another group is
one ``app.add_typer`` away. Every command takes ``--json`` for scripts where it prints a record. Errors go to
stderr as ``error: <message>`` with exit status 1. A key is printed only where it is created, as the last line.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import pydantic
import typer
from pydantic import BaseModel

from ingress.admin.tenancy import admin_keys, customers, keys
from ingress.admin.tenancy.errors import parse_id
from ingress.cli.alerts import alerts_app
from ingress.cli.policies import policies_app
from ingress.cli.receipts import receipts_app
from ingress.cli.support import (
    UNREACHABLE as _UNREACHABLE,
    CommandError,
    CustomerFilter,
    JsonOpt,
    LimitOpt,
    OffsetOpt,
    YesOpt,
    confirm as _confirm,
    database_address as _where,
    fail as _fail,
    load_settings as _settings,
    parse_uuid as _parse_id,
    print_json as _print_json,
    print_table as _print_table,
    run_with_pool as _run,
    show as _show,
    show_page as _show_page,
    validate as _validate,
)
from ingress.settings import IngressSettings
from schemas.admin import (
    DEFAULT_GRACE_PERIOD_S,
    CustomerCreate,
    CustomerUpdate,
    KeyCreate,
    KeyRotate,
)

T = TypeVar("T")

app = typer.Typer(
    name="govern",
    help="Operate the AI governance service: customers, API keys, policies, admin keys, migrations.",
    no_args_is_help=True,
    add_completion=False,
)
customers_app = typer.Typer(help="Customers: create, list, show, update, delete.", no_args_is_help=True)
keys_app = typer.Typer(help="Customers' API keys: create, list, show, rotate, revoke.", no_args_is_help=True)
admin_app = typer.Typer(help="Operators' admin keys (sk_admin_...).", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(customers_app, name="customers")
app.add_typer(keys_app, name="keys")
app.add_typer(policies_app, name="policies")
app.add_typer(admin_app, name="admin")
app.add_typer(db_app, name="db")
app.add_typer(receipts_app, name="receipts")
app.add_typer(alerts_app, name="alerts")


# --- plumbing ------------------------------------------------------------------------------------------------


class AdminKeyName(BaseModel):
    model_config = pydantic.ConfigDict(str_strip_whitespace=True)

    name: Annotated[str, pydantic.Field(min_length=1, max_length=200)]


def _parse_rate_limit(raw: str | None) -> dict[str, int] | None:
    """``CAPACITY/WINDOW_S`` (e.g. ``500/60``), or ``default`` for the tier's limit."""
    if raw is None or raw.strip().lower() == "default":
        return None
    capacity, sep, window = raw.partition("/")
    if not sep or not capacity.strip().isdigit() or not window.strip().isdigit():
        _fail("--rate-limit must read CAPACITY/WINDOW_S (e.g. 500/60) or 'default'")
    return {"capacity": int(capacity), "window_s": int(window)}


# --- customers -------------------------------------------------------------------------------------------------

_CUSTOMER_COLUMNS = ("id", "name", "tier", "rate_limit", "created_at")


@customers_app.command("create")
def customers_create(
    name: Annotated[str, typer.Argument(help="The customer's name (unique among live customers).")],
    tier: Annotated[str, typer.Option(help="free or pro.")] = "free",
    rate_limit: Annotated[
        str | None, typer.Option(help="Override of the tier's limit, CAPACITY/WINDOW_S (e.g. 500/60).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a customer."""
    request = _validate(CustomerCreate, {"name": name, "tier": tier, "rate_limit": _parse_rate_limit(rate_limit)})
    created = _run(lambda pool, _: customers.create_customer(pool, request))
    _show(created, as_json)


@customers_app.command("list")
def customers_list(limit: LimitOpt = 100, offset: OffsetOpt = 0, as_json: JsonOpt = False) -> None:
    """List live customers, oldest first."""
    page = _run(lambda pool, _: customers.list_customers(pool, limit=limit, offset=offset))
    _show_page(page, _CUSTOMER_COLUMNS, as_json)


@customers_app.command("show")
def customers_show(customer_id: Annotated[str, typer.Argument(help="Customer id.")], as_json: JsonOpt = False) -> None:
    """Show one customer."""
    found = _run(lambda pool, _: customers.get_customer(pool, parse_id(customer_id, "customer")))
    _show(found, as_json)


@customers_app.command("update")
def customers_update(
    customer_id: Annotated[str, typer.Argument(help="Customer id.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    tier: Annotated[str | None, typer.Option(help="free or pro.")] = None,
    rate_limit: Annotated[
        str | None, typer.Option(help="CAPACITY/WINDOW_S, or 'default' to return to the tier's limit.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a customer's name, tier or rate limit."""
    data: dict[str, Any] = {}
    if name is not None:
        data["name"] = name
    if tier is not None:
        data["tier"] = tier
    if rate_limit is not None:
        data["rate_limit"] = _parse_rate_limit(rate_limit)
    request = _validate(CustomerUpdate, data)
    updated = _run(lambda pool, _: customers.update_customer(pool, parse_id(customer_id, "customer"), request))
    _show(updated, as_json)


@customers_app.command("delete")
def customers_delete(
    customer_id: Annotated[str, typer.Argument(help="Customer id.")], yes: YesOpt = False, as_json: JsonOpt = False
) -> None:
    """Delete a customer: revokes all its keys and deactivates its policies at once. History stays."""
    parsed = _parse_id(customer_id, "customer")
    _confirm(f"Delete customer {parsed}, revoking all its keys?", yes)
    deleted = _run(lambda pool, _: customers.delete_customer(pool, parsed))
    if as_json:
        _print_json(deleted)
    else:
        typer.echo(
            f"customer {deleted.id} deleted: {deleted.keys_revoked} key(s) revoked,"
            f" {deleted.policies_deactivated} policy(ies) deactivated"
        )


# --- keys ------------------------------------------------------------------------------------------------------

_KEY_COLUMNS = ("key_id", "name", "status", "created_at", "expires_at", "last_used_at", "age_days", "id")


def _print_new_key(created: BaseModel, as_json: bool, note: str) -> None:
    if as_json:
        _print_json(created)
        return
    data = created.model_dump(mode="json")
    for name, value in data.items():
        if name != "key" and value is not None:
            typer.echo(f"{name + ':':<24}{value}")
    typer.echo(note)
    typer.echo(data["key"])  # the last line, alone, so scripts can take it with `tail -n 1`


@keys_app.command("create")
def keys_create(
    customer: Annotated[str, typer.Option("--customer", help="Customer id.")],
    name: Annotated[str, typer.Option(help="Key name, unique among the customer's live keys.")],
    as_json: JsonOpt = False,
) -> None:
    """Issue an API key. The key is printed once, as the last line; only its hash is stored."""
    request = _validate(KeyCreate, {"customer_id": customer, "name": name})
    created = _run(lambda pool, s: keys.create_key(pool, request, rounds=s.bcrypt_rounds))
    _print_new_key(created, as_json, "the key below is shown only this once; send it over a secure channel:")


@keys_app.command("list")
def keys_list(
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's keys.")] = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """List keys (never the key itself): status, age, expiry, last use."""
    customer_id = _validate(CustomerFilter, {"customer_id": customer}).customer_id
    page = _run(lambda pool, _: keys.list_keys(pool, customer_id=customer_id, limit=limit, offset=offset))
    _show_page(page, _KEY_COLUMNS, as_json)


@keys_app.command("show")
def keys_show(
    key: Annotated[str, typer.Argument(help="Key id (UUID) or key_id (keyid_...).")], as_json: JsonOpt = False
) -> None:
    """Show one key (never the key itself)."""
    found = _run(lambda pool, _: keys.get_key(pool, key))
    _show(found, as_json)


@keys_app.command("rotate")
def keys_rotate(
    key: Annotated[str, typer.Argument(help="Key id (UUID) or key_id (keyid_...).")],
    grace_period: Annotated[
        int, typer.Option("--grace-period", help="Seconds the old key keeps working (0 = stop now).")
    ] = DEFAULT_GRACE_PERIOD_S,
    as_json: JsonOpt = False,
) -> None:
    """Issue a successor key; the old one keeps working for the grace period (default 7 days), then stops."""
    request = _validate(KeyRotate, {"grace_period_s": grace_period})
    rotated = _run(lambda pool, s: keys.rotate_key(pool, key, request, rounds=s.bcrypt_rounds))
    _print_new_key(rotated, as_json, "the new key below is shown only this once; send it over a secure channel:")


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id (UUID) or key_id (keyid_...).")], as_json: JsonOpt = False
) -> None:
    """Revoke a key: it stops working at once."""
    revoked = _run(lambda pool, _: keys.revoke_key(pool, key))
    if as_json:
        _print_json(revoked)
    else:
        typer.echo(f"key {revoked.key_id} revoked at {revoked.model_dump(mode='json')['revoked_at']}")


# --- policies --------------------------------------------------------------------------------------------------


@admin_app.command("create-key")
def admin_create_key(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'alice laptop'.")], as_json: JsonOpt = False
) -> None:
    """Create an admin key. The key is printed once, as the last line."""
    checked = _validate(AdminKeyName, {"name": name})
    created = _run(lambda pool, s: admin_keys.create_admin_key(pool, checked.name, rounds=s.bcrypt_rounds))
    _print_new_key(created, as_json, "the admin key below is shown only this once; keep it secret:")


@admin_app.command("list-keys")
def admin_list_keys(as_json: JsonOpt = False) -> None:
    """List admin keys (never the key itself)."""
    found = _run(lambda pool, _: admin_keys.list_admin_keys(pool))
    if as_json:
        _print_json(found)
    else:
        _print_table(found, ("key_id", "name", "active", "created_at", "last_used_at", "id"))


@admin_app.command("revoke-key")
def admin_revoke_key(key: Annotated[str, typer.Argument(help="Admin key id (UUID) or key_id (keyid_...).")]) -> None:
    """Revoke an admin key: it stops working at once."""
    revoked = _run(lambda pool, _: admin_keys.revoke_admin_key(pool, key))
    typer.echo(f"admin key {revoked.key_id} revoked")


def write_secret_file(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path`` readable by its owner only (0600), atomically, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@admin_app.command("bootstrap")
def admin_bootstrap(
    file: Annotated[Path, typer.Option("--file", help="Where the admin key is kept (created with mode 0600).")],
) -> None:
    """Make sure FILE holds a working admin key: keep the one there, or create one named 'bootstrap' and save it."""

    async def work(pool: asyncpg.Pool, settings: IngressSettings) -> str | None:
        if file.is_file():
            try:
                saved = file.read_text(errors="replace").strip()
            except OSError as exc:
                raise CommandError(f"cannot read {file}: {exc.strerror}") from None
            if await admin_keys.admin_key_verifies(pool, saved):
                return None
        created = await admin_keys.create_admin_key(pool, "bootstrap", rounds=settings.bcrypt_rounds)
        try:
            write_secret_file(file, created.key)
        except OSError as exc:
            await admin_keys.revoke_admin_key(pool, created.id)  # nobody holds it: do not leave it live
            raise CommandError(f"cannot write {file}: {exc.strerror}") from None
        return created.key

    key = _run(work)
    if key is None:
        typer.echo(f"admin key already saved in {file}")
        return
    typer.echo(f"admin key created and saved in {file} (mode 0600); it is shown only this once:")
    typer.echo(key)


# --- db --------------------------------------------------------------------------------------------------------


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending PostgreSQL migrations (and ClickHouse ones when ClickHouse is a server)."""
    from infra.migrate import migrate_all

    settings = _settings()
    try:
        # The embedded ClickHouse belongs to the process that serves it; that process migrates it at start.
        asyncio.run(migrate_all(settings, clickhouse=not settings.clickhouse_embedded))
    except _UNREACHABLE as exc:
        _fail(f"cannot use PostgreSQL at {_where(settings.database_url)} ({type(exc).__name__}); is it running?")
    except Exception as exc:  # noqa: BLE001 - a failed migration is reported, not a traceback
        _fail(f"migration failed: {type(exc).__name__}: {exc}")
    typer.echo("migrations applied")


if __name__ == "__main__":
    app()
