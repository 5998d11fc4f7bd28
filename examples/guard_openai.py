"""Guard an OpenAI client: every model call is checked by the governance service before it leaves.

    GOVERNANCE_API_KEY=sk_live_... OPENAI_API_KEY=sk-... python examples/guard_openai.py

``GOVERNANCE_URL`` defaults to http://localhost:8000 (``make up``); ``OPENAI_BASE_URL`` points the SDK at any
OpenAI-compatible endpoint; ``MODEL`` (default gpt-4o-mini) must be in your policy's ``allowed_models``. The
first question is allowed, the second carries an e-mail address and is blocked before any request is sent.
Needs ``pip install ./clients/python openai``.
"""

# ruff: noqa: T201 - printing the outcome is what this example is for

from __future__ import annotations

import os
import sys

import openai
from openai import OpenAI

from governance_client import Blocked, Client
from governance_client.openai import guarded

MODEL = os.environ.get("MODEL", "gpt-4o-mini")
QUESTIONS = [
    "Summarise the benefits of code review in one sentence.",
    "Draft a reply to jane.doe@example.com about her insurance claim.",
]


def main() -> int:
    with Client(base_url=os.environ.get("GOVERNANCE_URL", "http://localhost:8000")) as governance:
        llm = guarded(OpenAI(), governance=governance, context={"user_id": "user_123", "department": "engineering"})
        for question in QUESTIONS:
            try:
                stream = llm.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": question}], max_tokens=200, stream=True
                )
                text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
            except Blocked as blocked:
                print(f"blocked: {blocked.reason} (request_id {blocked.request_id})")
            except openai.APIConnectionError:
                print("allowed by governance, but the model provider could not be reached")
            else:
                print(f"allowed: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
