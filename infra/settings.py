"""Settings shared by every deployable. Each deployable has its own subclass (``ingress.settings`` and so on).

Values come from the environment and an optional ``.env`` file. Outside local runs, secrets still at their
local default are refused, and every validation error names the environment variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import topics

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = PROJECT_ROOT / ".state"

LOCAL_DATABASE_URL = "postgresql://governance:governance@127.0.0.1:5432/governance"


class CommonSettings(BaseSettings):
    """Connection settings every role needs, named as in docker-compose.yml."""

    # Errors name the variable, never echo values: they hold passwords and keys.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["local", "test", "staging", "production"] = Field("local", alias="ENVIRONMENT")
    state_dir: Path = Field(DEFAULT_STATE_DIR, alias="GOVERNANCE_STATE_DIR")
    database_url: str = Field(LOCAL_DATABASE_URL, alias="DATABASE_URL")
    database_pool_min: int = Field(2, alias="DATABASE_POOL_MIN", ge=1)
    database_pool_max: int = Field(20, alias="DATABASE_POOL_MAX", ge=1)
    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", alias="KAFKA_BOOTSTRAP_SERVERS")
    clickhouse_url: str = Field("", alias="CLICKHOUSE_URL")
    clickhouse_database: str = Field("governance", alias="CLICKHOUSE_DATABASE")
    decisions_topic: str = Field(topics.DECISIONS, alias="DECISIONS_TOPIC")
    alerts_topic: str = Field(topics.ALERTS, alias="ALERTS_TOPIC")
    dlq_topic: str = Field(topics.DECISIONS_DLQ, alias="DLQ_TOPIC")
    signals_topic: str = Field(topics.SIGNALS, alias="SIGNALS_TOPIC")
    metrics_host: str = Field("127.0.0.1", alias="METRICS_HOST")
    sentry_dsn: str = Field("", alias="SENTRY_DSN")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    # AES-256 key (base64) sealing webhook signing secrets at rest (infra/secret_box.py); required outside local runs
    # by the roles that use it (ingress registers webhooks, workers deliver them).
    webhook_secrets_key: str = Field("", alias="WEBHOOK_SECRETS_KEY", repr=False)

    @property
    def clickhouse_dsn(self) -> str:
        """The ClickHouse target: ``CLICKHOUSE_URL`` when set, else embedded chdb under the state folder."""
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{self.state_dir / 'clickhouse'}"

    @property
    def clickhouse_embedded(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")

    @model_validator(mode="after")
    def _refuse_local_secrets_outside_local(self) -> CommonSettings:
        if self.environment in {"staging", "production"} and "governance:governance@" in self.database_url:
            raise ValueError("DATABASE_URL still carries the local default password; set a real one")
        return self
