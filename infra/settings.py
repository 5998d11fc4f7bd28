"""Settings shared by every deployable. Each deployable has its own subclass (``ingress.settings`` and so on).

Values come from the environment and an optional ``.env`` file. ``ENVIRONMENT`` unset means production; outside
local runs, secrets still at their local default are refused, and every validation error names the environment
variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import topics

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = PROJECT_ROOT / ".state"
# Written by ``make up`` (ENVIRONMENT=local): the local stack's own settings, read before ``.env`` and the
# environment, so ``govern`` run by hand beside the local stack is a local run too. Never part of an image or of
# docker compose's interpolation (which reads ``.env``).
LOCAL_STACK_ENV = Path(os.environ.get("GOVERNANCE_STATE_DIR") or DEFAULT_STATE_DIR) / "local.env"
ENV_FILES = (LOCAL_STACK_ENV, Path(".env"))  # later files win; real environment variables win over both

LOCAL_DATABASE_URL = "postgresql://governance:governance@127.0.0.1:5432/governance"


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaClientSettings(BaseSettings):
    """How every Kafka client we build (producer, consumers, admin) authenticates and encrypts (``infra.kafka``).

    ``SASL_*`` protocols need a username and a password; ``SSL`` and ``SASL_SSL`` verify the broker against
    ``KAFKA_SSL_CAFILE`` (the system's CAs when empty) and, for mutual TLS, present ``KAFKA_SSL_CERTFILE`` with
    ``KAFKA_SSL_KEYFILE``.
    """

    # Errors name the variable, never echo values: they hold passwords and keys.
    model_config = SettingsConfigDict(
        env_file=ENV_FILES, env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    kafka_security_protocol: KafkaSecurityProtocol = Field("PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL")
    kafka_sasl_mechanism: KafkaSaslMechanism = Field("SCRAM-SHA-512", alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str = Field("", alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: str = Field("", alias="KAFKA_SASL_PASSWORD", repr=False)
    kafka_ssl_cafile: str = Field("", alias="KAFKA_SSL_CAFILE")
    kafka_ssl_certfile: str = Field("", alias="KAFKA_SSL_CERTFILE")
    kafka_ssl_keyfile: str = Field("", alias="KAFKA_SSL_KEYFILE")

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> KafkaClientSettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (mutual TLS)")
        if not self.kafka_security_protocol.endswith("SSL") and (self.kafka_ssl_cafile or self.kafka_ssl_certfile):
            raise ValueError("KAFKA_SSL_* files need KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL")
        return self


class CommonSettings(KafkaClientSettings):
    """Connection settings every role needs, named as in docker-compose.yml."""

    # Unset means production: every fail-open default (local secrets, private webhook targets, open /metrics, the
    # interactive docs) needs ENVIRONMENT=local or test said out loud, as the local stack (make) and the tests do.
    environment: Literal["local", "test", "staging", "production"] = Field("production", alias="ENVIRONMENT")
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
    # The nice increment the consumers and the workers start with (infra/priority.py): throughput work yields the
    # cores to the check path on a host they share.
    background_nice: int = Field(5, alias="BACKGROUND_NICE", ge=0, le=19)
    # AES-256 key (base64) sealing webhook signing secrets at rest (infra/secret_box.py); required outside local runs
    # by the roles that use it (ingress registers webhooks, workers deliver them).
    webhook_secrets_key: str = Field("", alias="WEBHOOK_SECRETS_KEY", repr=False)

    @classmethod
    def derive(cls, common: CommonSettings, **overrides: Any) -> Self:
        """Settings of this deployable sharing ``common``'s connections and topics (every ``CommonSettings``
        field); its own values come from the environment, or ``overrides`` keyed by environment variable name."""
        values: dict[str, Any] = {
            field.alias or name: getattr(common, name) for name, field in CommonSettings.model_fields.items()
        }
        values.update(overrides)
        return cls(**values)

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
