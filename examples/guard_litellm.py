"""Guard LiteLLM: the governance guardrail checks every ``acompletion`` before LiteLLM sends it.

    GOVERNANCE_API_KEY=sk_live_... OPENAI_API_KEY=sk-... python examples/guard_litellm.py

``GOVERNANCE_URL`` defaults to http://localhost:8000 (``make up``); ``MODEL`` (default openai/gpt-4o-mini) is a
LiteLLM model name whose model part must be in your policy's ``allowed_models``; ``API_BASE`` points LiteLLM
at another endpoint. The first question is allowed, the second carries an e-mail address and is blocked before
any request is sent. Needs ``pip install ./clients/python litellm``.
"""

# ruff: noqa: T201 - printing the outcome is what this example is for

from __future__ import annotations

import asyncio
import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # use the price list LiteLLM ships, offline

import litellm

from governance_client import AsyncClient, Blocked
from governance_client.litellm import GovernanceGuardrail

MODEL = os.environ.get("MODEL", "openai/gpt-4o-mini")
QUESTIONS = [
    "Summarise the benefits of code review in one sentence.",
    "Draft a reply to jane.doe@example.com about her insurance claim.",
]


async def main() -> int:
    async with AsyncClient(base_url=os.environ.get("GOVERNANCE_URL", "http://localhost:8000")) as governance:
        litellm.callbacks = [GovernanceGuardrail(governance=governance, context={"department": "research"})]
        for question in QUESTIONS:
            try:
                answer = await litellm.acompletion(
                    model=MODEL,
                    messages=[{"role": "user", "content": question}],
                    max_tokens=200,
                    api_base=os.environ.get("API_BASE"),
                )
            except Blocked as blocked:
                print(f"blocked: {blocked.reason} (request_id {blocked.request_id})")
            except litellm.APIConnectionError:
                print("allowed by governance, but the model provider could not be reached")
            else:
                print(f"allowed: {answer.choices[0].message.content}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
