"""``govern receipts``: verify a decision receipt, and rotate the signing key."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import httpx
import pydantic
import typer

from infra.receipt_keys import ReceiptKeyring
from ingress.settings import IngressSettings
from schemas.receipt import Receipt, b64url_decode, verify_receipt

receipts_app = typer.Typer(help="Verify signed decision receipts and rotate the signing key.", no_args_is_help=True)


def _load_keys(keys_url: str | None, keys_dir: Path | None) -> dict[str, bytes]:
    if keys_url:
        response = httpx.get(keys_url, timeout=10)
        response.raise_for_status()
        return {k["key_id"]: b64url_decode(k["public_key"]) for k in response.json()["keys"]}
    settings = IngressSettings()
    return ReceiptKeyring(keys_dir or settings.receipt_keys_dir).public_keys()


@receipts_app.command("verify")
def verify(
    receipt_file: Annotated[Path, typer.Argument(help="A JSON file holding a receipt, or a whole check response.")],
    keys_url: Annotated[
        str | None, typer.Option(help="Fetch public keys from this URL, e.g. http://localhost:8000/v1/receipts/keys.")
    ] = None,
    keys_dir: Annotated[Path | None, typer.Option(help="Read public keys from this keyring folder instead.")] = None,
) -> None:
    """Exit 0 and print 'valid' when the receipt is genuine and unchanged; exit 1 otherwise."""
    try:
        document = json.loads(receipt_file.read_text())
        receipt = Receipt.model_validate(document.get("receipt", document))
    except (OSError, ValueError, pydantic.ValidationError) as exc:
        typer.echo(f"error: not a receipt: {exc}", err=True)
        raise typer.Exit(2) from None
    keys = _load_keys(keys_url, keys_dir)
    if verify_receipt(receipt, keys):
        typer.echo(f"valid: event {receipt.signed.event_id} signed by {receipt.key_id}")
        return
    reason = "unknown signing key" if receipt.key_id not in keys else "signature does not match the fields"
    typer.echo(f"INVALID: {reason}", err=True)
    sys.exit(1)


@receipts_app.command("rotate-key")
def rotate_key(
    keys_dir: Annotated[Path | None, typer.Option(help="Keyring folder (default: RECEIPT_KEYS_DIR).")] = None,
) -> None:
    """Start signing with a new key; the old public key stays published so old receipts still verify.
    Running API processes pick the new key up at their next start."""
    keyring = ReceiptKeyring(keys_dir or IngressSettings().receipt_keys_dir)
    key = keyring.rotate()
    typer.echo(f"new receipt signing key {key.key_id}")
