"""The engine stays pure: no I/O, clock, settings or infrastructure can creep in through an import."""

from __future__ import annotations

import ast
from pathlib import Path

import ingress.engine

ENGINE = Path(ingress.engine.__file__).parent
ALLOWED = {"__future__", "collections.abc", "dataclasses", "ipaddress", "operator", "re", "typing"}
ALLOWED_PREFIXES = ("schemas.", "ingress.engine")


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_engine_modules_import_only_pure_modules() -> None:
    files = sorted(ENGINE.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        for module in imported_modules(path):
            assert module in ALLOWED or module.startswith(ALLOWED_PREFIXES), f"{path.name} imports {module}"


def test_the_public_api() -> None:
    assert sorted(ingress.engine.__all__) == [
        "BudgetDemand",
        "Decision",
        "PolicySnapshot",
        "analyze_request",
        "budget_demands",
        "decide",
        "decide_from_features",
        "detect_personal_data",
        "summarize_operations",
    ]
