"""The guide's Part 4 flow in one call of the client: check, then allowed or blocked, errors and rate limits.

    GOVERNANCE_API_KEY=sk_live_... python examples/check.py

``GOVERNANCE_URL`` defaults to http://localhost:8000 (``make up``). Needs ``pip install ./clients/python``.
"""

# ruff: noqa: T201 - printing the outcome is what this example is for

from __future__ import annotations

import os
import sys

from governance_client import AuthenticationError, Client, GovernanceUnavailable, RateLimited, ValidationFailed

OPERATION = {"type": "llm_call", "model": "gpt-4", "tokens": 500, "provider": "openai"}
CONTEXT = {"user_id": "user_123", "session_id": "session_abc", "department": "engineering"}


def main() -> int:
    with Client(base_url=os.environ.get("GOVERNANCE_URL", "http://localhost:8000")) as governance:
        try:
            result = governance.check([OPERATION], CONTEXT)  # 429 and 503 are retried as Retry-After says
        except AuthenticationError as error:
            print(f"invalid or missing API key ({error.reason}); request_id {error.request_id}")
            return 1
        except ValidationFailed as error:
            print(f"request refused: {error}")
            return 1
        except RateLimited as error:
            print(f"rate limited: retry in {error.retry_after} s")
            return 1
        except GovernanceUnavailable as error:
            print(f"no decision (fail closed): {error}")
            return 1
    if result.allowed:
        print(f"allowed, risk score {result.risk_score}")
    else:
        print(f"blocked: {result.reason}")
    remaining = result.rate_limit.remaining
    if remaining is not None and remaining < 10:
        print(f"approaching the rate limit: {remaining} requests left until {result.rate_limit.reset_at}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
