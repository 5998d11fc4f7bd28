"""Plumbing shared by the ``govern`` command groups: options, error lines, settings, one pool per command."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, NoReturn, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import pydantic
import typer
from pydantic import BaseModel

from infra.postgres import TRANSIENT_ERRORS, build_postgres_pool
from ingress.admin.tenancy.errors import parse_id
from ingress.http.errors import ApiError
from ingress.settings import IngressSettings
from schemas.admin import Page

T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
LimitOpt = Annotated[int, typer.Option(min=1, max=500, help="Rows per page.")]
OffsetOpt = Annotated[int, typer.Option(min=0, help="Rows to skip.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

UNREACHABLE = (
    *TRANSIENT_ERRORS,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
)


class CommandError(Exception):
    """A refusal found inside a command's database work, printed as it is."""


def fail(message: str) -> NoReturn:
    """Print ``error: …`` (the API's wording, without its ``body.`` prefix) and exit 1."""
    typer.echo(f"error: {message.removeprefix('body.')}", err=True)
    raise typer.Exit(1)


def validation_message(exc: pydantic.ValidationError) -> str:
    """Same wording as the API's 422, every problem on a line of its own."""
    lines = [f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()]
    return "\n  ".join(lines)


def load_settings() -> IngressSettings:
    try:
        return IngressSettings()
    except pydantic.ValidationError as exc:
        fail(f"settings: {validation_message(exc)}")


def database_address(database_url: str) -> str:
    """The database's address without credentials."""
    parts = urlsplit(database_url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def validate(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        fail(validation_message(exc))


def parse_uuid(raw: str, what: str) -> UUID:
    try:
        return parse_id(raw, what)
    except ApiError as exc:
        fail(exc.message)


def run_with_pool(work: Callable[[asyncpg.Pool, IngressSettings], Awaitable[T]]) -> T:
    """Run one command's database work on a pool of its own, turning refusals into an error line and exit 1."""
    settings = load_settings()

    async def main() -> T:
        pool = await build_postgres_pool(settings.database_url, min_size=1, max_size=2)
        try:
            return await work(pool, settings)
        finally:
            await pool.close()

    try:
        return asyncio.run(main())
    except ApiError as exc:
        fail(exc.message)
    except CommandError as exc:
        fail(str(exc))
    except (asyncpg.DataError, asyncpg.CheckViolationError):
        fail("a value was refused by the database")
    except UNREACHABLE as exc:
        fail(
            f"cannot use PostgreSQL at {database_address(settings.database_url)} ({type(exc).__name__}); is it running?"
        )


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list | bool):
        return json.dumps(value)
    return str(value)


def dump(value: BaseModel | Sequence[BaseModel]) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return [item.model_dump(mode="json") for item in value]


def print_json(value: BaseModel | Sequence[BaseModel]) -> None:
    typer.echo(json.dumps(dump(value), indent=2))


def print_record(record: BaseModel, *, skip: Sequence[str] = ()) -> None:
    for name, value in record.model_dump(mode="json").items():
        if name not in skip:
            typer.echo(f"{name + ':':<24}{cell(value)}")


def print_table(records: Sequence[BaseModel], columns: Sequence[str], total: int | None = None) -> None:
    rows = [[cell(r.model_dump(mode="json")[c]) for c in columns] for r in records]
    widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if total is not None and total > len(records):
        typer.echo(f"({len(records)} of {total}; use --offset/--limit for more)")


def show(record: BaseModel, as_json: bool) -> None:
    if as_json:
        print_json(record)
    else:
        print_record(record)


def show_page(page: Page[Any], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        print_json(page)
    else:
        print_table(page.items, columns, page.total)


def confirm(question: str, yes: bool) -> None:
    if not yes and not typer.confirm(question, default=False):
        fail("cancelled")


class CustomerFilter(BaseModel):
    """The optional ``--customer`` filter of the list commands."""

    customer_id: UUID | None = None
