"""Client of the AI governance check service, and drop-in guards for model SDKs.

from governance_client import Client
from governance_client.openai import guarded

llm = guarded(OpenAI(), governance=Client(base_url="http://localhost:8000", api_key="sk_live_..."))
"""

from governance_client.client import AsyncClient, Client
from governance_client.errors import (
    AuthenticationError,
    Blocked,
    FieldError,
    GovernanceError,
    GovernanceUnavailable,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ReceiptInvalid,
    ServerError,
    ValidationFailed,
)
from governance_client.guarding import UnguardedCall
from governance_client.operations import embedding, llm_call
from governance_client.protocol import FAIL_CLOSED, NO_RETRIES, FailClosed, FailOpen, OutagePolicy, RetryPolicy
from governance_client.results import CheckResult, Factor, RateLimit, Violation

__all__ = [
    "FAIL_CLOSED",
    "NO_RETRIES",
    "AsyncClient",
    "AuthenticationError",
    "Blocked",
    "CheckResult",
    "Client",
    "Factor",
    "FailClosed",
    "FailOpen",
    "FieldError",
    "GovernanceError",
    "GovernanceUnavailable",
    "OutagePolicy",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimit",
    "RateLimited",
    "ReceiptInvalid",
    "RetryPolicy",
    "ServerError",
    "UnguardedCall",
    "ValidationFailed",
    "Violation",
    "embedding",
    "llm_call",
]
