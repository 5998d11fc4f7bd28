"""Signed decision receipts: a receipt verifies, a tampered one fails (key_id and reason are signed too), one signed
before a rotation or before v2 still verifies, and the CLI checks a receipt against the request it was for."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
import pydantic
import pytest

from infra.receipt_keys import ReceiptKeyring
from ingress.check.receipts import ReceiptSigner
from schemas.receipt import (
    IssuedReceipt,
    ReceiptBody,
    b64url,
    b64url_decode,
    digest_matches,
    legacy_request_digest,
    request_digest,
    verify_receipt,
)
from tests.conftest import LiveServer, insert_customer
from tests.ingress.check.test_check import GUIDE_STEP4, auth

SALT = bytes(range(32))


def _body(**changes: object) -> ReceiptBody:
    fields: dict[str, object] = {
        "event_id": "e1",
        "request_id": "req_1",
        "customer_id": "c1",
        "key_id": "keyid_abcdefghijkl",
        "decided_at": "2026-11-26T14:07:00.123Z",
        "allowed": True,
        "risk_score": 20,
        "reason": "Within policy limits",
        "policy_versions": ["p1:3"],
        "request_digest": request_digest({"a": 1}, SALT),
    }
    fields.update(changes)
    return ReceiptBody.model_validate(fields)


def test_tampered_receipt_fails(tmp_path: Path) -> None:
    keyring = ReceiptKeyring(tmp_path / "keys")
    signer = ReceiptSigner(keyring)
    receipt = signer.sign(_body())
    keys = keyring.public_keys()
    assert verify_receipt(receipt, keys)
    changes: list[dict[str, object]] = [
        {"allowed": False},
        {"risk_score": 19},
        {"policy_versions": ["p1:4"]},
        {"event_id": "e2"},
        {"key_id": "keyid_000000000000"},
        {"reason": "Blocked: personal data"},
        {"request_digest": request_digest({"a": 2}, SALT)},
    ]
    for change in changes:
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


def test_v1_receipts_issued_before_salted_digests_still_verify(tmp_path: Path) -> None:
    keyring = ReceiptKeyring(tmp_path / "keys")
    body = _body(v=1, key_id=None, reason=None, request_digest=legacy_request_digest({"a": 1}))
    receipt = ReceiptSigner(keyring).sign(body)
    assert "key_id" not in receipt.signed.signed_bytes().decode()  # signed as v1 receipts were: without them
    assert verify_receipt(receipt, keyring.public_keys())
    assert digest_matches(receipt.signed.request_digest, {"a": 1}, None)
    assert not digest_matches(receipt.signed.request_digest, {"a": 2}, None)


def test_a_v2_receipt_must_sign_key_id_reason_and_a_salted_digest() -> None:
    for change in ({"key_id": None}, {"reason": None}, {"request_digest": legacy_request_digest({"a": 1})}):
        with pytest.raises(pydantic.ValidationError):
            _body(**change)


async def test_check_response_carries_a_receipt_that_verifies(live_server: LiveServer, pg_pool: asyncpg.Pool) -> None:
    customer = await insert_customer(pg_pool)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))
        published = (await http.get("/v1/receipts/keys")).json()["keys"]
    body = response.json()
    receipt = IssuedReceipt.model_validate(body["receipt"])
    keys = {k["key_id"]: b64url_decode(k["public_key"]) for k in published}
    assert verify_receipt(receipt, keys)
    assert receipt.signed.v == 2
    assert receipt.signed.event_id == body["event_id"]
    assert receipt.signed.request_id == body["request_id"]
    assert receipt.signed.allowed == body["allowed"]
    assert receipt.signed.reason == body["reason"]
    assert receipt.signed.customer_id == str(customer.id)
    assert receipt.signed.key_id == customer.key_id
    # the customer, holding the salt, can recompute the digest of what it sent
    salt = b64url_decode(receipt.request_salt)
    assert receipt.signed.request_digest == request_digest(GUIDE_STEP4, salt)
    assert any(k["active"] for k in published)


def test_cli_verifies_and_rejects(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from ingress.cli.main import app

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

    # With the request sent: the receipt as issued (salt included) is the receipt of {"a": 1}, of nothing else.
    issued = IssuedReceipt(**receipt.model_dump(), request_salt=b64url(SALT))
    response = tmp_path / "response.json"
    response.write_text(json.dumps({"allowed": True, "receipt": issued.model_dump()}))
    sent, other = tmp_path / "sent.json", tmp_path / "other.json"
    sent.write_text(json.dumps({"a": 1}))
    other.write_text(json.dumps({"a": 2}))
    keys = ["--keys-dir", str(tmp_path / "keys")]
    for_it = runner.invoke(app, ["receipts", "verify", str(response), *keys, "--request", str(sent)])
    assert for_it.exit_code == 0, for_it.output
    assert "for this request" in for_it.output
    not_for_it = runner.invoke(app, ["receipts", "verify", str(response), *keys, "--request", str(other)])
    assert not_for_it.exit_code == 1
    assert "request_digest is not the digest of this request" in not_for_it.output
    unsalted = runner.invoke(app, ["receipts", "verify", str(good), *keys, "--request", str(sent)])
    assert unsalted.exit_code == 1  # the event's copy (no salt) cannot prove the request, to anyone
    assert "no request_salt" in unsalted.output
