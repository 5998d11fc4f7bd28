"""The dashboard's pure parts: the policy form ⇄ document, the version diff, the SVG charts, sessions and the
sign-in redirect. No process, no browser (those are in test_dashboard.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingress.dashboard.charts import Series, bar_chart, line_chart, nice_ceiling
from ingress.dashboard.pages.sign_in import safe_next
from ingress.dashboard.policy_diff import changed, diff_versions
from ingress.dashboard.policy_form import (
    RULE_FIELDS,
    JsonInputError,
    document_from_form,
    document_from_json,
    field_errors,
    form_values,
    policy_json,
)
from ingress.dashboard.rendering import HERE, ago, templates, when
from ingress.dashboard.sessions import SessionStore, SignInTokens, tokens_match
from ingress.dashboard.settings import DashboardSettings
from tests.ingress.check.test_check import GUIDE_RULES

GUIDE_FORM = {
    "name": "Allow Internal Data Only",
    "mode": "enforce",
    "active": "on",
    "rules.max_external_calls": "5",
    "rules.block_personal_data": "on",
    "rules.allowed_models": "gpt-4, claude-3",
    "rules.max_tokens": "10000",
    "rules.risk_threshold": "",
}


def test_the_guides_rules_from_the_form() -> None:
    document = document_from_form(GUIDE_FORM)
    assert document == {"name": "Allow Internal Data Only", "mode": "enforce", "active": True, "rules": GUIDE_RULES}


def test_form_values_round_trip() -> None:
    rules = {**GUIDE_RULES, "risk_weights": {"large_dataset": 5}}
    document = {"name": "p", "mode": "shadow", "active": False, "rules": rules}
    values = form_values(document)
    assert values["rules.allowed_models"] == "gpt-4, claude-3"
    assert values["rules.risk_weights.large_dataset"] == "5"
    assert values["rules.risk_threshold"] == ""
    assert values["active"] == ""
    assert document_from_form(values, rules) == document


def test_an_unticked_box_is_kept_false_only_when_it_was_stated() -> None:
    form = {"name": "p", "mode": "enforce", "active": "on"}
    assert document_from_form(form, {})["rules"] == {}
    assert document_from_form(form, {"block_personal_data": True})["rules"] == {"block_personal_data": False}


def test_rules_without_a_field_are_kept() -> None:
    budgets = [{"name": "daily", "scope": "user_id", "measure": "tokens", "limit": 1000, "window_s": 86400}]
    current = {**GUIDE_RULES, "session_budgets": budgets, "risk_weights": {"personal_data": 80, "future": 1}}
    document = document_from_form({**GUIDE_FORM, "rules.max_tokens": "400"}, current)
    assert document["rules"]["session_budgets"] == budgets
    assert document["rules"]["risk_weights"] == {"future": 1}  # the form's weight field was left blank
    assert document["rules"]["max_tokens"] == 400


def test_every_form_field_is_a_rule_with_its_default_in_the_hint() -> None:
    hints = {spec.path: spec.hint for spec in RULE_FIELDS}  # a path that names no rule raises here
    assert hints["rules.risk_threshold"].endswith("blank = 50")
    assert hints["rules.risk_weights.personal_data"].endswith("blank = 70")
    assert hints["rules.max_tokens"] == "blank = no limit"
    assert hints["rules.allowed_models"].endswith("blank = any model")


def test_a_number_that_does_not_parse_goes_to_the_api_as_typed() -> None:
    document = document_from_form({**GUIDE_FORM, "rules.max_tokens": "lots", "rules.risk_threshold": " 70 "})
    assert document["rules"]["max_tokens"] == "lots"
    assert document["rules"]["risk_threshold"] == 70


def test_api_errors_land_on_their_fields() -> None:
    details = [
        {"field": "body.rules.max_tokens", "message": "Input should be greater than 0"},
        {"field": "body.rules.allowed_models.0", "message": "Input should be a valid string"},
        {"field": "body.rules.surprise", "message": "Extra inputs are not permitted"},
        {"field": "query.from", "message": "bad time"},
    ]
    errors = field_errors(details, ("rules.max_tokens", "rules.allowed_models", "from"))
    assert errors == {
        "rules.max_tokens": "Input should be greater than 0",
        "rules.allowed_models": "Input should be a valid string",
        "rules.surprise": "Extra inputs are not permitted",
        "from": "bad time",
    }


def test_json_view() -> None:
    text = policy_json({"name": "p", "mode": "enforce", "active": True, "rules": GUIDE_RULES, "id": "x"})
    assert '"id"' not in text
    assert document_from_json(text)["rules"] == GUIDE_RULES
    with pytest.raises(JsonInputError, match="line 1, column 2"):
        document_from_json("{oops}")
    with pytest.raises(JsonInputError, match="JSON object"):
        document_from_json("[1, 2]")


def test_diff_marks_the_changed_rule_only() -> None:
    v1 = {"version": 1, "name": "p", "mode": "enforce", "active": True, "rules": GUIDE_RULES}
    v2 = {**v1, "version": 2, "rules": {**GUIDE_RULES, "max_tokens": 400}}
    lines = diff_versions(v1, v2)
    assert [(line.kind, line.text.strip()) for line in lines if line.kind != "same"] == [
        ("removed", '"max_tokens": 10000'),
        ("added", '"max_tokens": 400'),
    ]
    assert changed(lines)
    assert not changed(diff_versions(v1, {**v1, "version": 3}))


def test_nice_ceiling() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 3, 7, 11, 26, 999)] == [1, 0.5, 1, 5, 10, 20, 50, 1000]


def test_charts_escape_labels_and_draw_every_point() -> None:
    labels = ["10:00", "<script>", "10:02"]
    bars = bar_chart(
        "Allowed & blocked", labels, [Series("Allowed", [1, 2, 0], "allowed"), Series("Blocked", [0, 3, 1], "blocked")]
    )
    assert "<script>" not in bars.svg
    assert "&lt;script&gt;" in bars.svg
    assert "Allowed &amp; blocked" in bars.svg
    assert bars.svg.count('class="tone-allowed"') == 2
    assert bars.svg.count('class="tone-blocked"') == 2
    assert not bars.empty
    lines = line_chart("Risk", labels, [Series("Average", [10.0, None, 30.0], "risk")])
    assert lines.svg.count("<circle") == 2  # the gap splits the line into two single points
    empty = line_chart("Risk", labels, [Series("Average", [None, None, None], "risk")], empty_text="No checks")
    assert empty.empty
    assert "No checks" in empty.svg


def test_sessions_expire_and_are_bounded() -> None:
    now = [1000.0]
    store = SessionStore(ttl_s=60, max_sessions=2, clock=lambda: now[0])
    first, session = store.open("sk_admin_x", "keyid_x")
    assert store.find(first) is session
    assert "sk_admin_x" not in repr(session)
    second, _ = store.open("sk_admin_y", "keyid_y")
    third, _ = store.open("sk_admin_z", "keyid_z")
    assert store.find(first) is None  # the oldest made room
    assert store.find(second) is not None
    now[0] += 61
    assert store.find(third) is None
    assert store.find(None) is None
    assert store.find("made-up") is None


def test_tokens() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert not tokens_match("abc", None)
    assert not tokens_match("abc", "")
    tokens = SignInTokens(b"k" * 32)
    nonce = tokens.new_nonce()
    assert tokens.valid(nonce, tokens.token_for(nonce))
    assert not tokens.valid(nonce, tokens.token_for("other"))
    assert not tokens.valid(None, tokens.token_for(nonce))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/dashboard/logs?customer_id=1", "/dashboard/logs?customer_id=1"),
        ("https://evil.example/dashboard", "/dashboard"),
        ("//evil.example/dashboard", "/dashboard"),
        ("/dashboard//evil.example", "/dashboard"),
        (None, "/dashboard"),
    ],
)
def test_sign_in_only_returns_to_dashboard_pages(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_times_read_in_utc() -> None:
    now = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    assert when("2025-01-02T10:00:00.123Z") == "2025-01-02 10:00:00 UTC"
    assert when(None) == "—"
    assert ago((now - timedelta(hours=3)).isoformat(), now) == "3 h ago"
    assert ago(None, now) == "never"


def test_every_template_compiles() -> None:
    names = [path.name for path in (HERE / "templates").glob("*.html")]
    assert len(names) >= 15
    for name in names:
        templates.env.get_template(name)


def test_settings_refuse_an_insecure_cookie_outside_local() -> None:
    with pytest.raises(ValueError, match="DASHBOARD_COOKIE_SECURE"):
        DashboardSettings.model_validate({"ENVIRONMENT": "production"})
    assert DashboardSettings.model_validate(
        {"ENVIRONMENT": "production", "DASHBOARD_COOKIE_SECURE": "true"}
    ).cookie_secure
    assert DashboardSettings.model_validate({}).dashboard_port == 3000
