"""docs/security.md names, for each threat, the test that proves its control: every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def _references() -> list[tuple[str, str | None]]:
    """(file, test) for every test the doc's tables name; ``::name`` alone means the cell's last named file."""
    found: list[tuple[str, str | None]] = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("| API"):
            continue
        for cell in line.split("|"):
            current: str | None = None
            for match in _REFERENCE.finditer(cell):
                path, name = match.groups()
                if path is None and name is None:
                    continue
                current = path or current
                if current is not None:
                    found.append((current, name))
    return found


def test_the_doc_names_tests_for_every_owasp_category() -> None:
    text = DOC.read_text()
    for number in range(1, 11):
        assert f"| API{number} " in text, f"API{number} has no row"


@pytest.mark.parametrize(("path", "name"), _references())
def test_every_named_test_exists(path: str, name: str | None) -> None:
    source = DOC.parents[1] / path
    assert source.exists(), path
    if name is not None:
        assert re.search(rf"^(async )?def {name}\(", source.read_text(), re.M), f"{path}::{name}"
