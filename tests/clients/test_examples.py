"""Each example script runs as documented against a real ingress process, with the provider stand-in in place of
the model provider: the allowed question is answered, the one with personal data is blocked and never sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LiveServer, SeededCustomer
from tests.support.client_standins import REPLY, StandIn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# A fresh interpreter importing LiteLLM takes tens of seconds on a busy machine.
pytestmark = pytest.mark.timeout(300)


def run_example(name: str, live_server: LiveServer, key: str, provider: StandIn) -> list[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "GOVERNANCE_"))},
        "GOVERNANCE_URL": live_server.url,
        "GOVERNANCE_API_KEY": key,
        "OPENAI_API_KEY": "sk-provider-test",
        "OPENAI_BASE_URL": f"{provider.url}/v1",
        "ANTHROPIC_API_KEY": "sk-ant-provider-test",
        "ANTHROPIC_BASE_URL": provider.url,
        "API_BASE": f"{provider.url}/v1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert key not in done.stdout + done.stderr
    return done.stdout.strip().splitlines()


@pytest.mark.parametrize("name", ["guard_openai.py", "guard_anthropic.py", "guard_litellm.py"])
def test_guard_examples(name: str, live_server: LiveServer, governed: SeededCustomer, provider: StandIn) -> None:
    lines = run_example(name, live_server, governed.key, provider)
    assert lines[0] == f"allowed: {REPLY}"
    assert lines[1].startswith("blocked: Personal data detected")
    assert "request_id req_" in lines[1]
    assert len(provider.requests()) == 1


def test_check_example(live_server: LiveServer, governed: SeededCustomer, provider: StandIn) -> None:
    # gpt-4 is not among the test policy's allowed models: the check is decided, and blocked
    lines = run_example("check.py", live_server, governed.key, provider)
    assert lines[0].startswith("blocked: Model 'gpt-4' is not in the allowed models")
    assert provider.requests() == []
