"""The receipt verification code in docs/receipts.md works as written against a real receipt."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import LiveServer, insert_customer
from tests.ingress.check.test_check import GUIDE_STEP4, auth


async def test_documented_python_verifier(live_server: LiveServer, pg_pool: asyncpg.Pool, project_root: Path) -> None:
    text = (project_root / "docs" / "receipts.md").read_text()
    code = re.search(r"## Verifying a receipt in Python\n\n```python\n(.*?)```", text, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "docs/receipts.md", "exec"), namespace)  # noqa: S102 - our own documentation
    verify = namespace["verify"]

    customer = await insert_customer(pg_pool)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        receipt = (await http.post("/v1/check", json=GUIDE_STEP4, headers=auth(customer))).json()["receipt"]
        keys = (await http.get("/v1/receipts/keys")).json()["keys"]
    assert verify(receipt, keys, GUIDE_STEP4) is True
    tampered = {**receipt, "signed": {**receipt["signed"], "risk_score": 99}}
    assert verify(tampered, keys) is False
    assert verify(receipt, keys, {**GUIDE_STEP4, "context": {}}) is False
