"""The policy editor's two views, as pure functions: form fields ⇄ a policy document, JSON text → a document,
and the API's validation errors mapped back to the fields they name. No I/O.

Numbers that do not parse are passed on as typed, so the API (the one validator) names what is wrong with them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from schemas.policy_rules import PolicyRules, RiskWeights

FieldKind = Literal["int", "bool", "models"]


def rule_default(path: str) -> Any:
    """The value a rule takes when the policy leaves it out (``rules.risk_weights.large_dataset`` → 30)."""
    *parents, name = path.split(".")[1:]
    model: type[BaseModel] = RiskWeights if parents == ["risk_weights"] else PolicyRules
    return model.model_fields[name].get_default(call_default_factory=True)


@dataclass(frozen=True)
class RuleField:
    path: str  # "rules.max_tokens", "rules.risk_weights.personal_data"
    label: str
    kind: FieldKind
    what: str

    @property
    def hint(self) -> str:
        """What the rule does and, but for a box, what a blank field means (from the rules' own defaults)."""
        if self.kind == "bool":
            return self.what
        default = rule_default(self.path)
        blank = ("any model" if self.kind == "models" else "no limit") if default is None else str(default)
        return f"{self.what}; blank = {blank}" if self.what else f"blank = {blank}"


RULE_FIELDS: tuple[RuleField, ...] = (
    RuleField("rules.max_external_calls", "Max external calls", "int", "external calls allowed in one check"),
    RuleField("rules.block_personal_data", "Block personal data", "bool", "block any check with personal data"),
    RuleField("rules.allowed_models", "Allowed models", "models", "comma-separated, e.g. gpt-4, claude-3"),
    RuleField("rules.max_tokens", "Max tokens per LLM call", "int", ""),
    RuleField("rules.risk_threshold", "Risk threshold", "int", "0 to 100: block when the risk score reaches it"),
    RuleField("rules.large_dataset_rows", "Large dataset: rows", "int", "a data access of this many rows is large"),
    RuleField("rules.large_dataset_bytes", "Large dataset: bytes", "int", "... or of this many bytes"),
    RuleField("rules.risk_weights.personal_data", "Weight: personal data", "int", "risk points, 0 to 100"),
    RuleField("rules.risk_weights.external_model_call", "Weight: external model call", "int", ""),
    RuleField("rules.risk_weights.large_dataset", "Weight: large dataset", "int", ""),
    RuleField("rules.risk_weights.unknown_operation", "Weight: unknown operation", "int", ""),
)

_INTEGER = re.compile(r"[+-]?\d+")


def _lookup(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _place(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = document
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def _number(raw: str) -> int | str:
    text = raw.strip()
    return int(text) if _INTEGER.fullmatch(text) else text


def _models(raw: str) -> list[str]:
    return [name.strip() for name in re.split(r"[,\n]", raw) if name.strip()]


def form_values(document: Mapping[str, Any]) -> dict[str, str]:
    """What each form field shows for a policy document (``name``, ``mode``, ``active``, ``rules``)."""
    values = {
        "name": str(document.get("name") or ""),
        "mode": str(document.get("mode") or "enforce"),
        "active": "on" if document.get("active", True) else "",
    }
    for spec in RULE_FIELDS:
        value = _lookup(document, spec.path)
        if spec.kind == "bool":
            values[spec.path] = "on" if value is True else ""
        elif spec.kind == "models":
            values[spec.path] = ", ".join(str(m) for m in value) if isinstance(value, list) else ""
        else:
            values[spec.path] = "" if value is None else str(value)
    return values


def _without(rules: Mapping[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """A deep copy of ``rules`` without the given ``rules.…`` paths (empty objects left by that removed too)."""
    kept = json.loads(json.dumps(dict(rules)))
    for path in paths:
        *parents, last = path.split(".")[1:]
        target = kept
        for part in parents:
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target.pop(last, None)
    return {key: value for key, value in kept.items() if value != {}}


FORM_RULE_PATHS: tuple[str, ...] = tuple(spec.path for spec in RULE_FIELDS)


def other_rules(rules: Mapping[str, Any]) -> dict[str, Any]:
    """The rules the form has no field for (``session_budgets``…): kept as they are, edited in the JSON view."""
    return _without(rules, FORM_RULE_PATHS)


def document_from_form(form: Mapping[str, str], current_rules: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A policy document from the submitted fields: blank fields are left out (the rule's default applies).

    Rules the form has no field for are kept from ``current_rules``. An unticked box is left out too, unless the
    current rules state it, so saving the form unchanged writes no new version.
    """
    document: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "mode": form.get("mode", "enforce"),
        "active": form.get("active") == "on",
        "rules": other_rules(current_rules or {}),
    }
    current = {"rules": dict(current_rules or {})}
    for spec in RULE_FIELDS:
        raw = form.get(spec.path, "")
        if spec.kind == "bool":
            ticked = raw == "on"
            if ticked or _lookup(current, spec.path) is not None:
                _place(document, spec.path, ticked)
        elif raw.strip() == "":
            continue
        elif spec.kind == "models":
            _place(document, spec.path, _models(raw))
        else:
            _place(document, spec.path, _number(raw))
    return document


def policy_json(document: Mapping[str, Any]) -> str:
    """The JSON view's text: the fields an operator controls, pretty-printed."""
    shown = {key: document[key] for key in ("name", "mode", "active", "rules") if key in document}
    return json.dumps(shown, indent=2, sort_keys=False, ensure_ascii=False)


class JsonInputError(ValueError):
    """The JSON view's text is not a JSON object; the message says where."""


def document_from_json(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(parsed, dict):
        raise JsonInputError("expected a JSON object with name, mode, active and rules")
    return parsed


FORM_FIELDS: tuple[str, ...] = ("name", "mode", "active", *(spec.path for spec in RULE_FIELDS))


def field_errors(details: list[dict[str, Any]], known: tuple[str, ...] = FORM_FIELDS) -> dict[str, str]:
    """The API's 422 details (``body.rules.allowed_models.0``, ``query.from``) keyed by the form field they belong to
    (``rules.allowed_models``): the longest known field that the path starts with, else the path itself."""
    errors: dict[str, str] = {}
    for detail in details:
        path = str(detail.get("field", ""))
        for source in ("body", "query"):
            if path == source or path.startswith(source + "."):
                path = path[len(source) + 1 :]
        owner = max(
            (name for name in known if path == name or path.startswith(name + ".")), key=len, default=path or "body"
        )
        message = str(detail.get("message", "invalid"))
        errors[owner] = f"{errors[owner]}; {message}" if owner in errors else message
    return errors
