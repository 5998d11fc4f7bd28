"""Signed decision receipts: a receipt verifies, a tampered one fails, one signed before a rotation still verifies."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx

from infra.receipt_keys import ReceiptKeyring
from ingress.receipts import ReceiptSigner
from schemas.receipt import Receipt, ReceiptBody, b64url_decode, request_digest, verify_receipt
from tests.conftest import LiveServer, insert_customer
from tests.test_check import GUIDE_STEP4, auth


def _body(**changes: object) -> ReceiptBody:
    fields: dict[str, object] = {
        "event_id": "e1",
        "request_id": "req_1",
        "customer_id": "c1",
        "decided_at": "2026-11-26T14:07:00.123Z",
        "allowed": True,
        "risk_score": 20,
        "policy_versions": ["p1:3"],
        "request_digest": request_digest({"a": 1}),
    }
    fields.update(changes)
    return ReceiptBody.model_validate(fields)


def test_tampered_receipt_fails(tmp_path: Path) -> None:
    keyring = ReceiptKeyring(tmp_path / "keys")
    signer = ReceiptSigner(keyring)
    receipt = signer.sign(_body())
    keys = keyring.public_keys()
    assert verify_receipt(receipt, keys)
    for change in ({"allowed": False}, {"risk_score": 19}, {"policy_versions": ["p1:4"]}, {"event_id": "e2"}):
        forged = receipt.model_copy(update={"signed": receipt.signed.model_copy(update=change)})
        assert not verify_receipt(forged, keys), change
    assert not verify_receipt(receipt.model_copy(update={"key_id": "rk_0000000000000000"}), keys)


def test_receipt_signed_before_rotation_still_verifies(tmp_path: Path) -> None:
    keyring = ReceiptKeyring(tmp_path / "keys")
    old = ReceiptSigner(keyring).sign(_body())
    rotated = keyring.rotate()
    new = ReceiptSigner(keyring).sign(_body(event_id="e2"))
    assert new.key_id == rotated.key_id != old.key_id
    keys = keyring.public_keys()
    assert set(keys) == {old.key_id, new.key_id}
    assert verify_receipt(old, keys)
    assert verify_receipt(new, keys)


async def test_check_response_carries_a_receipt_that_verifies(live_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    customer = await insert_customer(pg_pool)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))
        published = (await http.get("/v1/receipts/keys")).json()["keys"]
    body = response.json()
    receipt = Receipt.model_validate(body["receipt"])
    keys = {k["key_id"]: b64url_decode(k["public_key"]) for k in published}
    assert verify_receipt(receipt, keys)
    assert receipt.signed.event_id == body["event_id"]
    assert receipt.signed.request_id == body["request_id"]
    assert receipt.signed.allowed == body["allowed"]
    assert receipt.signed.customer_id == str(customer.id)
    # the customer can recompute the digest of what it sent
    assert receipt.signed.request_digest == request_digest(GUIDE_STEP4)
    assert any(k["active"] for k in published)


def test_cli_verifies_and_rejects(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from ingress.cli import app

    keyring = ReceiptKeyring(tmp_path / "keys")
    receipt = ReceiptSigner(keyring).sign(_body())
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"allowed": True, "receipt": receipt.model_dump()}))
    tampered = tmp_path / "bad.json"
    tampered.write_text(
        receipt.model_copy(update={"signed": receipt.signed.model_copy(update={"allowed": False})}).model_dump_json()
    )
    runner = CliRunner()
    ok = runner.invoke(app, ["receipts", "verify", str(good), "--keys-dir", str(tmp_path / "keys")])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("valid")
    bad = runner.invoke(app, ["receipts", "verify", str(tampered), "--keys-dir", str(tmp_path / "keys")])
    assert bad.exit_code == 1
    assert "INVALID" in bad.output
