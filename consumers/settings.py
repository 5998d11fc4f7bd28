"""Settings of the consumers deployable (``python -m consumers``) and of the audit writer wherever it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from infra.settings import CommonSettings

AUDIT_GROUP_ID = "governance-audit"


class AuditSettings(CommonSettings):
    """How the audit writer batches, retries, dead-letters and retains decisions."""

    audit_group_id: str = Field(AUDIT_GROUP_ID, alias="AUDIT_GROUP_ID", min_length=1)
    audit_batch_size: int = Field(500, alias="AUDIT_BATCH_SIZE", ge=1, le=100_000)
    audit_flush_interval_s: float = Field(1.0, alias="AUDIT_FLUSH_INTERVAL_S", gt=0, le=60)
    audit_retention_days: int = Field(365, alias="AUDIT_RETENTION_DAYS", ge=1, le=36_500)
    # auto: run the writer inside ingress exactly when ingress owns the embedded ClickHouse (chdb).
    audit_in_process: Literal["auto", "true", "false"] = Field("auto", alias="AUDIT_IN_PROCESS")
    # Stop consuming when more than AUDIT_DLQ_LIMIT of the last AUDIT_DLQ_WINDOW messages were dead-lettered.
    audit_dlq_limit: int = Field(50, alias="AUDIT_DLQ_LIMIT", ge=0)
    audit_dlq_window: int = Field(100, alias="AUDIT_DLQ_WINDOW", ge=1, le=100_000)
    audit_backoff_initial_s: float = Field(0.5, alias="AUDIT_BACKOFF_INITIAL_S", gt=0)
    audit_backoff_max_s: float = Field(30.0, alias="AUDIT_BACKOFF_MAX_S", gt=0)
    # Where the writer reads the published receipt keys that every stored decision's receipt must verify against:
    # the keyring folder ingress publishes them in (default <state>/receipt-keys), or ingress's
    # GET /v1/receipts/keys when RECEIPT_KEYS_URL is set (another machine or container).
    receipt_keys_dir_override: str = Field("", alias="RECEIPT_KEYS_DIR")
    receipt_keys_url: str = Field("", alias="RECEIPT_KEYS_URL")
    # How often python -m consumers measures the lag of the audit and alerting groups (consumers/lag.py).
    consumer_lag_interval_s: float = Field(10.0, alias="CONSUMER_LAG_INTERVAL_S", gt=0, le=300)

    @model_validator(mode="after")
    def _limits_make_sense(self) -> AuditSettings:
        if self.audit_dlq_limit >= self.audit_dlq_window:
            raise ValueError("AUDIT_DLQ_LIMIT must be smaller than AUDIT_DLQ_WINDOW, or the limit can never trip")
        if self.audit_backoff_max_s < self.audit_backoff_initial_s:
            raise ValueError("AUDIT_BACKOFF_MAX_S must be at least AUDIT_BACKOFF_INITIAL_S")
        return self

    @property
    def receipt_keys_dir(self) -> Path:
        return (
            Path(self.receipt_keys_dir_override) if self.receipt_keys_dir_override else self.state_dir / "receipt-keys"
        )

    @property
    def audit_runs_in_ingress(self) -> bool:
        """Whether the ingress process should run the writer (and own the audit schema)."""
        if self.audit_in_process == "auto":
            return self.clickhouse_embedded
        return self.audit_in_process == "true"

    @classmethod
    def derive(cls, common: CommonSettings, **overrides: Any) -> Self:
        """As ``CommonSettings.derive``; and a setting both deployables have that ``common`` was given
        (``RECEIPT_KEYS_DIR`` of ingress) is shared too: the in-process writer reads the receipt keys where this
        process's signer publishes them."""
        shared: dict[str, Any] = {}
        for name in ("receipt_keys_dir_override",):
            if name in common.model_fields_set and name in type(common).model_fields:
                shared[cls.model_fields[name].alias or name] = getattr(common, name)
        return super().derive(common, **{**shared, **overrides})
