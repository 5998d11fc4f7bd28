"""Whether a decision event is one ingress made: its receipt verifies and signs the event's own fields. Pure.

Anyone who can write to ``governance.decisions.v1`` can write a well-formed ``DecisionEvent``; only ingress holds
the receipt signing key. A receipt proves the fields it signs, so the writer checks both that the signature
verifies against the published public key and that those fields are the event's: a genuine receipt moved onto
an altered event (another customer, ``allowed`` flipped) fails as surely as a forged signature.
"""

from __future__ import annotations

from schemas.decision_event import DecisionEvent
from schemas.receipt import ReceiptBody, format_instant, verify_receipt


def receipt_body_for(event: DecisionEvent) -> ReceiptBody:
    """The receipt fields a receipt of this event signs (``v: 2``), as ingress builds them
    (``ingress.check.route.build_event``): what a genuine receipt's ``signed`` must equal."""
    return ReceiptBody(
        event_id=str(event.event_id),
        request_id=event.request_id,
        customer_id=str(event.customer_id),
        key_id=event.key_id,
        decided_at=format_instant(event.decided_at),
        allowed=event.allowed,
        risk_score=event.risk_score,
        reason=event.reason,
        policy_versions=sorted(f"{p.policy_id}:{p.version}" for p in event.policies),
        request_digest=event.request_digest,
    )


def _signed_fields_of(event: DecisionEvent) -> dict[str, object]:
    return {
        "event_id": str(event.event_id),
        "request_id": event.request_id,
        "customer_id": str(event.customer_id),
        "decided_at": format_instant(event.decided_at),
        "allowed": event.allowed,
        "risk_score": event.risk_score,
        "policy_versions": sorted(f"{p.policy_id}:{p.version}" for p in event.policies),
        "request_digest": event.request_digest,
        "key_id": event.key_id,
        "reason": event.reason,
    }


def receipt_problem(event: DecisionEvent, public_key: bytes | None) -> str | None:
    """None when the event's receipt verifies under ``public_key`` (the key published under the receipt's key id,
    None when there is none) and signs the event's fields; otherwise what is wrong, naming fields, never values."""
    receipt = event.receipt
    if receipt is None:
        return "the event carries no receipt"
    if public_key is None:
        return f"receipt signed by {receipt.key_id!r}, a key that was never published"
    if not verify_receipt(receipt, {receipt.key_id: public_key}):
        return f"the receipt signature does not verify under {receipt.key_id!r}"
    signed = receipt.signed.model_dump()
    expected = _signed_fields_of(event)
    if receipt.signed.v == 1:  # issued before receipts signed key_id and reason
        expected.pop("key_id")
        expected.pop("reason")
    differing = sorted(name for name, value in expected.items() if signed.get(name) != value)
    if differing:
        return "the receipt does not sign this event: " + ", ".join(differing) + " differ"
    return None
