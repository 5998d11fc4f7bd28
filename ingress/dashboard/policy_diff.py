"""Differences between two versions of a policy, line by line over pretty-printed JSON. No I/O."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

LineKind = Literal["added", "removed", "same"]


@dataclass(frozen=True)
class DiffLine:
    kind: LineKind
    text: str

    @property
    def marker(self) -> str:
        return {"added": "+", "removed": "-", "same": " "}[self.kind]


def version_text(version: Mapping[str, Any]) -> str:
    """What an operator changes in a version (name, mode, active, rules), with sorted keys so only changes differ."""
    shown = {key: version.get(key) for key in ("name", "mode", "active", "rules")}
    return json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=False)


def diff_versions(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[DiffLine]:
    """Every line of the newer version, with the older one's removed lines in place (full context)."""
    before = version_text(old).splitlines()
    after = version_text(new).splitlines()
    lines: list[DiffLine] = []
    for raw in difflib.ndiff(before, after):
        tag, text = raw[:2], raw[2:]
        if tag == "+ ":
            lines.append(DiffLine("added", text))
        elif tag == "- ":
            lines.append(DiffLine("removed", text))
        elif tag == "  ":
            lines.append(DiffLine("same", text))
        # "? " lines are ndiff's intraline hints: not shown.
    return lines


def changed(lines: list[DiffLine]) -> bool:
    return any(line.kind != "same" for line in lines)
