"""Several processes starting at once on a fresh state folder (API_WORKERS check processes) sign with one key."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from infra.receipt_keys import ReceiptKeyring


def _key_id(folder: str) -> str:
    return ReceiptKeyring(Path(folder)).signing_key().key_id


def test_processes_creating_the_signing_key_at_once_agree_on_one(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        key_ids = pool.map(_key_id, [str(tmp_path / "keys")] * 8)
    assert len(set(key_ids)) == 1
    assert ReceiptKeyring(tmp_path / "keys").signing_key().key_id == key_ids[0]
    assert not list((tmp_path / "keys").glob(".*.tmp"))
