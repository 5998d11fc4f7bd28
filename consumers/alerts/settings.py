"""Settings of the alerting consumer (``python -m consumers.alerts``, or run inside another process)."""

from __future__ import annotations

from pydantic import Field, model_validator

from infra.settings import CommonSettings

ALERTS_GROUP_ID = "governance-alerts"


class AlertingSettings(CommonSettings):
    alerts_group_id: str = Field(ALERTS_GROUP_ID, alias="ALERTS_GROUP_ID", min_length=1)
    alerts_batch_size: int = Field(500, alias="ALERTS_BATCH_SIZE", ge=1, le=10_000)
    # How often every watched subject is evaluated even without new events (resolving, re-notifying).
    alerts_tick_s: float = Field(5.0, alias="ALERTS_TICK_S", gt=0, le=300)
    # How often the rules are re-read from PostgreSQL.
    alerts_rules_refresh_s: float = Field(15.0, alias="ALERTS_RULES_REFRESH_S", gt=0, le=3600)
    # How often alert events left unpublished (Kafka away) are retried.
    alerts_publish_interval_s: float = Field(2.0, alias="ALERTS_PUBLISH_INTERVAL_S", gt=0, le=300)
    alerts_backoff_initial_s: float = Field(0.5, alias="ALERTS_BACKOFF_INITIAL_S", gt=0)
    alerts_backoff_max_s: float = Field(30.0, alias="ALERTS_BACKOFF_MAX_S", gt=0)

    @model_validator(mode="after")
    def _backoff_makes_sense(self) -> AlertingSettings:
        if self.alerts_backoff_max_s < self.alerts_backoff_initial_s:
            raise ValueError("ALERTS_BACKOFF_MAX_S must be at least ALERTS_BACKOFF_INITIAL_S")
        return self
