"""Signing decision receipts in the check path, and publishing the public keys."""

from __future__ import annotations

from fastapi import APIRouter, Request

from infra.receipt_keys import ReceiptKeyring, SigningKey
from schemas.receipt import Receipt, ReceiptBody, b64url, format_instant

__all__ = ["ReceiptSigner", "format_instant", "router"]

router = APIRouter(tags=["receipts"])


class ReceiptSigner:
    def __init__(self, keyring: ReceiptKeyring) -> None:
        self.keyring = keyring
        self._key: SigningKey = keyring.signing_key()

    def sign(self, body: ReceiptBody) -> Receipt:
        signature = self._key.private.sign(body.signed_bytes())
        return Receipt(key_id=self._key.key_id, signed=body, signature=b64url(signature))

    @property
    def key_id(self) -> str:
        return self._key.key_id


@router.get("/v1/receipts/keys")
async def receipt_keys(request: Request) -> dict[str, list[dict[str, object]]]:
    """Every public key that ever signed a receipt; no authentication needed."""
    signer: ReceiptSigner = request.app.state.receipts
    return {
        "keys": [
            {"key_id": key_id, "alg": "Ed25519", "public_key": b64url(raw), "active": key_id == signer.key_id}
            for key_id, raw in signer.keyring.public_keys().items()
        ]
    }
