"""ENVIRONMENT unset means production: every fail-open default needs ENVIRONMENT=local or test said out loud, as the
local stack (make) and the test run (conftest.py) do."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.settings import ENV_FILES, LOCAL_STACK_ENV, CommonSettings
from ingress.dashboard.settings import DashboardSettings
from ingress.settings import IngressSettings
from workers.webhooks.settings import WebhookSettings

REAL_DB = "postgresql://app:s3cret@db:5432/governance"


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)


@pytest.mark.usefixtures("unset")
def test_unset_means_production_and_refuses_local_secrets() -> None:
    assert CommonSettings(_env_file=None, DATABASE_URL=REAL_DB).environment == "production"  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="DATABASE_URL still carries the local default password"):
        CommonSettings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="WEBHOOK_SECRETS_KEY is required"):
        IngressSettings(_env_file=None, DATABASE_URL=REAL_DB)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="DASHBOARD_COOKIE_SECURE"):
        DashboardSettings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.usefixtures("unset")
def test_unset_closes_private_webhook_targets() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    webhooks = WebhookSettings(_env_file=None, DATABASE_URL=REAL_DB, WEBHOOK_SECRETS_KEY=key)  # type: ignore[call-arg]
    assert webhooks.environment == "production"
    assert not webhooks.allows_private_addresses


@pytest.mark.usefixtures("unset")
def test_the_local_stacks_settings_file_makes_a_local_run_and_everything_else_wins(tmp_path: Path) -> None:
    """What ``make up`` writes (``.state/local.env``) is read first: ``govern`` by hand beside the local stack is a
    local run; an ``.env`` or a real environment variable still says otherwise."""
    stack, dot_env = tmp_path / "local.env", tmp_path / ".env"
    stack.write_text("ENVIRONMENT=local\n")
    assert CommonSettings(_env_file=(stack, dot_env)).environment == "local"  # type: ignore[call-arg]
    dot_env.write_text(f"ENVIRONMENT=staging\nDATABASE_URL={REAL_DB}\n")
    assert CommonSettings(_env_file=(stack, dot_env)).environment == "staging"  # type: ignore[call-arg]
    # every deployable reads the local stack's file first, then .env
    for model in (CommonSettings, DashboardSettings):
        assert model.model_config["env_file"] == ENV_FILES
    assert ENV_FILES[0] == LOCAL_STACK_ENV
    assert LOCAL_STACK_ENV.name == "local.env"


def test_the_test_run_is_a_local_run() -> None:
    assert os.environ["ENVIRONMENT"] in {"local", "test"}  # conftest.py, or make's export
    assert CommonSettings.model_validate({}).environment in {"local", "test"}


SHOW = ["make", "-s", "--no-print-directory", "--eval", 'show-environment: ; @echo "$$ENVIRONMENT"', "show-environment"]


def _make_environment(project_root: Path, env: dict[str, str]) -> str:
    shown = subprocess.run(SHOW, capture_output=True, text=True, check=False, cwd=project_root, env=env)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_runs_the_local_stack_as_a_local_run(project_root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ENVIRONMENT"}
    assert _make_environment(project_root, env) == "local"
    assert _make_environment(project_root, {**env, "ENVIRONMENT": "staging"}) == "staging"  # the caller's wins
