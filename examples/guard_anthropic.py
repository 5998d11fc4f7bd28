"""Guard an Anthropic client: every message is checked by the governance service before it leaves.

    GOVERNANCE_API_KEY=sk_live_... ANTHROPIC_API_KEY=sk-ant-... python examples/guard_anthropic.py

``GOVERNANCE_URL`` defaults to http://localhost:8000 (``make up``); ``ANTHROPIC_BASE_URL`` points the SDK
elsewhere; ``MODEL`` (default claude-sonnet-5-5) must be in your policy's ``allowed_models``. The first question is
allowed, the second carries an e-mail address and is blocked before any request is sent.
Needs ``pip install ./clients/python anthropic``.
"""

# ruff: noqa: T201 - printing the outcome is what this example is for

from __future__ import annotations

import os
import sys

import anthropic
from anthropic import Anthropic

from governance_client import Blocked, Client
from governance_client.anthropic import guarded

MODEL = os.environ.get("MODEL", "claude-sonnet-5-5")
QUESTIONS = [
    "Summarise the benefits of code review in one sentence.",
    "Draft a reply to jane.doe@example.com about her insurance claim.",
]


def main() -> int:
    with Client(base_url=os.environ.get("GOVERNANCE_URL", "http://localhost:8000")) as governance:
        llm = guarded(Anthropic(), governance=governance, context={"user_id": "user_123", "department": "support"})
        for question in QUESTIONS:
            try:
                with llm.messages.stream(
                    model=MODEL, max_tokens=200, messages=[{"role": "user", "content": question}]
                ) as stream:
                    text = "".join(stream.text_stream)
            except Blocked as blocked:
                print(f"blocked: {blocked.reason} (request_id {blocked.request_id})")
            except anthropic.APIConnectionError:
                print("allowed by governance, but the model provider could not be reached")
            else:
                print(f"allowed: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
