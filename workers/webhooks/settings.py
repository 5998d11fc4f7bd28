"""Settings of the webhook delivery worker (started by ``python -m workers``, or ``python -m workers.webhooks``)."""

from __future__ import annotations

from pydantic import Field, model_validator

from infra.secret_box import SecretBox
from infra.settings import CommonSettings


class WebhookSettings(CommonSettings):
    # Attempts per delivery, the first included; after the last failure the delivery is marked failed.
    webhook_max_attempts: int = Field(8, alias="WEBHOOK_MAX_ATTEMPTS", ge=1, le=50)
    # The wait after attempt n is min(initial * 2**(n-1), max), then jittered to between half and all of it.
    webhook_backoff_initial_s: float = Field(10.0, alias="WEBHOOK_BACKOFF_INITIAL_S", gt=0)
    webhook_backoff_max_s: float = Field(3600.0, alias="WEBHOOK_BACKOFF_MAX_S", gt=0)
    webhook_timeout_s: float = Field(10.0, alias="WEBHOOK_TIMEOUT_S", gt=0, le=120)
    webhook_poll_interval_s: float = Field(1.0, alias="WEBHOOK_POLL_INTERVAL_S", gt=0, le=60)
    # Deliveries claimed (and sent concurrently) per round by one worker.
    webhook_batch_size: int = Field(20, alias="WEBHOOK_BATCH_SIZE", ge=1, le=500)

    # Whether a delivery may reach loopback, private and link-local addresses (workers/webhooks/addresses.py).
    # Unset: yes in local and test runs (receivers on 127.0.0.1), no in staging and production.
    webhook_allow_private_addresses: bool | None = Field(None, alias="WEBHOOK_ALLOW_PRIVATE_ADDRESSES")

    @property
    def allows_private_addresses(self) -> bool:
        if self.webhook_allow_private_addresses is not None:
            return self.webhook_allow_private_addresses
        return self.environment in {"local", "test"}

    @model_validator(mode="after")
    def _backoff_makes_sense(self) -> WebhookSettings:
        if self.webhook_backoff_max_s < self.webhook_backoff_initial_s:
            raise ValueError("WEBHOOK_BACKOFF_MAX_S must be at least WEBHOOK_BACKOFF_INITIAL_S")
        SecretBox.from_settings(self)  # WEBHOOK_SECRETS_KEY: required outside local runs, 32 bytes of base64
        return self

    @property
    def webhook_lease_s(self) -> float:
        """How long a claimed delivery is kept from other workers: a worker that died mid-call frees it then."""
        return self.webhook_timeout_s * 2 + 30
