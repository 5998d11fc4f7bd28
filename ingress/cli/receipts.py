"""``govern receipts``: verify a decision receipt (and, given the request sent, its request digest), and rotate the
signing key."""

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
from schemas.receipt import IssuedReceipt, Receipt, b64url_decode, digest_matches, verify_receipt

receipts_app = typer.Typer(help="Verify signed decision receipts and rotate the signing key.", no_args_is_help=True)


def _load_keys(keys_url: str | None, keys_dir: Path | None) -> dict[str, bytes]:
    if keys_url:
        response = httpx.get(keys_url, timeout=10)
        response.raise_for_status()
        return {k["key_id"]: b64url_decode(k["public_key"]) for k in response.json()["keys"]}
    settings = IngressSettings()
    return ReceiptKeyring(keys_dir or settings.receipt_keys_dir).public_keys()


def _read_receipt(receipt_file: Path) -> Receipt:
    try:
        document = json.loads(receipt_file.read_text())
        found = document.get("receipt", document)
        model = IssuedReceipt if isinstance(found, dict) and "request_salt" in found else Receipt
        return model.model_validate(found)
    except (OSError, ValueError, AttributeError, pydantic.ValidationError) as exc:
        typer.echo(f"error: not a receipt: {exc}", err=True)
        raise typer.Exit(2) from None


def _request_problem(receipt: Receipt, request_file: Path) -> str | None:
    try:
        body = json.loads(request_file.read_text())
    except (OSError, ValueError) as exc:
        typer.echo(f"error: the request is not JSON: {exc}", err=True)
        raise typer.Exit(2) from None
    salt = None
    if isinstance(receipt, IssuedReceipt):
        try:
            salt = b64url_decode(receipt.request_salt)
        except ValueError:
            return "request_salt is not base64url"
    elif receipt.signed.v >= 2:
        return "the receipt carries no request_salt (keep the receipt exactly as the check response gave it)"
    if not digest_matches(receipt.signed.request_digest, body, salt):
        return "request_digest is not the digest of this request"
    return None


@receipts_app.command("verify")
def verify(
    receipt_file: Annotated[Path, typer.Argument(help="A JSON file holding a receipt, or a whole check response.")],
    keys_url: Annotated[
        str | None, typer.Option(help="Fetch public keys from this URL, e.g. http://localhost:8000/v1/receipts/keys.")
    ] = None,
    keys_dir: Annotated[Path | None, typer.Option(help="Read public keys from this keyring folder instead.")] = None,
    request: Annotated[
        Path | None,
        typer.Option(help="The request body that was sent (JSON): also check that the receipt is for it."),
    ] = None,
) -> None:
    """Exit 0 and print 'valid' when the receipt is genuine and unchanged (and, with --request, is the receipt of
    that request); exit 1 otherwise."""
    receipt = _read_receipt(receipt_file)
    keys = _load_keys(keys_url, keys_dir)
    if not verify_receipt(receipt, keys):
        reason = "unknown signing key" if receipt.key_id not in keys else "signature does not match the fields"
        typer.echo(f"INVALID: {reason}", err=True)
        sys.exit(1)
    if request is not None:
        problem = _request_problem(receipt, request)
        if problem is not None:
            typer.echo(f"INVALID: {problem}", err=True)
            sys.exit(1)
    checked = ", for this request" if request is not None else ""
    typer.echo(f"valid: event {receipt.signed.event_id} signed by {receipt.key_id}{checked}")


@receipts_app.command("rotate-key")
def rotate_key(
    keys_dir: Annotated[Path | None, typer.Option(help="Keyring folder (default: RECEIPT_KEYS_DIR).")] = None,
) -> None:
    """Start signing with a new key; the old public key stays published so old receipts still verify.
    Running API processes pick the new key up at their next start."""
    keyring = ReceiptKeyring(keys_dir or IngressSettings().receipt_keys_dir)
    key = keyring.rotate()
    typer.echo(f"new receipt signing key {key.key_id}")
