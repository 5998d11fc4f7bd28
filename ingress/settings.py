"""Settings of the ingress deployable."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator

from infra.secret_box import SecretBox
from infra.settings import CommonSettings


class IngressSettings(CommonSettings):
    api_host: str = Field("127.0.0.1", alias="API_HOST")
    api_port: int = Field(8000, alias="API_PORT")
    # The check path's processes: one per core unless told otherwise.
    api_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, alias="API_WORKERS", ge=1)
    # A rolling restart (SIGHUP to the supervisor) starts each replacement worker and retires the old one only once
    # the new one serves; a replacement not serving within this many seconds aborts the restart, the old one kept.
    worker_start_timeout_s: int = Field(60, alias="WORKER_START_TIMEOUT_S", ge=1)
    # The audit read side (``python -m ingress.audit``): its own process on a loopback port, reached by ingress,
    # which forwards the history, summary, export and backtest paths to it (ingress/http/forward.py).
    audit_api_host: str = Field("127.0.0.1", alias="AUDIT_API_HOST")
    audit_api_port: int = Field(8001, alias="AUDIT_API_PORT")
    audit_api_url_override: str = Field("", alias="AUDIT_API_URL")
    # An export of every row streams for as long as it takes; this bounds a silent read side, not a slow export.
    audit_forward_timeout_s: float = Field(30.0, alias="AUDIT_FORWARD_TIMEOUT_S", gt=0)
    # The read side's CPU priority (a nice increment, 0-19): an export or a backtest yields the cores to the check
    # path on a host they share, instead of taking its p99 with them.
    audit_nice: int = Field(10, alias="AUDIT_NICE", ge=0, le=19)
    key_cache_ttl_s: float = Field(300.0, alias="KEY_CACHE_TTL_S", gt=0)
    bcrypt_rounds: int = Field(12, alias="BCRYPT_ROUNDS", ge=4, le=16)
    rate_limit_free_capacity: int = Field(100, alias="RATE_LIMIT_FREE_CAPACITY", gt=0)
    rate_limit_free_window_s: int = Field(60, alias="RATE_LIMIT_FREE_WINDOW_S", gt=0)
    rate_limit_pro_capacity: int = Field(1000, alias="RATE_LIMIT_PRO_CAPACITY", gt=0)
    rate_limit_pro_window_s: int = Field(60, alias="RATE_LIMIT_PRO_WINDOW_S", gt=0)
    rate_limit_redis_timeout_s: float = Field(0.25, alias="RATE_LIMIT_REDIS_TIMEOUT_S", gt=0)
    rate_limit_breaker_open_s: float = Field(2.0, alias="RATE_LIMIT_BREAKER_OPEN_S", gt=0)
    # Token leases (ingress/check/leases.py): a check process takes this share of a bucket's capacity in one Redis
    # call and decides the key's next checks from it; 0 turns them off (a script call per check). A lease's unused
    # tokens go back after RATE_LIMIT_LEASE_TTL_S; below RATE_LIMIT_LEASE_EXACT_BELOW leases' worth in the bucket,
    # only as many tokens as checks waiting are taken.
    rate_limit_lease_fraction: float = Field(0.01, alias="RATE_LIMIT_LEASE_FRACTION", ge=0, le=0.05)
    rate_limit_lease_ttl_s: float = Field(1.0, alias="RATE_LIMIT_LEASE_TTL_S", gt=0, le=60)
    rate_limit_lease_exact_below: int = Field(5, alias="RATE_LIMIT_LEASE_EXACT_BELOW", ge=0)
    customer_config_ttl_s: float = Field(30.0, alias="CUSTOMER_CONFIG_TTL_S", gt=0)
    publish_ack_timeout_s: float = Field(0.5, alias="PUBLISH_ACK_TIMEOUT_S", gt=0)
    # While the broker acknowledges, the deadline follows its recent acks (three times their p99), up to this cap.
    publish_max_ack_wait_s: float = Field(5.0, alias="PUBLISH_MAX_ACK_WAIT_S", gt=0)
    spool_max_events: int = Field(100_000, alias="SPOOL_MAX_EVENTS", gt=0)
    spool_dir_override: str = Field("", alias="SPOOL_DIR")
    max_body_bytes: int = Field(1024 * 1024, alias="MAX_BODY_BYTES", gt=0)
    receipt_keys_dir_override: str = Field("", alias="RECEIPT_KEYS_DIR")
    receipt_signing_key: str = Field("", alias="RECEIPT_SIGNING_KEY", repr=False)
    ready_timeout_s: float = Field(1.0, alias="READY_TIMEOUT_S", gt=0)
    # Every path but the check (ingress/http/read_limits.py): one bucket per admin or customer key for reads and admin
    # calls, a smaller one per admin key for backtests.
    read_rate_limit_capacity: int = Field(600, alias="READ_RATE_LIMIT_CAPACITY", gt=0)
    read_rate_limit_window_s: int = Field(60, alias="READ_RATE_LIMIT_WINDOW_S", gt=0)
    backtest_rate_limit_capacity: int = Field(10, alias="BACKTEST_RATE_LIMIT_CAPACITY", gt=0)
    backtest_rate_limit_window_s: int = Field(60, alias="BACKTEST_RATE_LIMIT_WINDOW_S", gt=0)
    # Backtests replay in worker processes of their own (ingress/audit/backtest/runner.py): at most this many at
    # once in the read side (more are refused with a 429), each stopped after this many seconds of replay.
    backtest_concurrency: int = Field(1, alias="BACKTEST_CONCURRENCY", ge=1, le=8)
    backtest_time_budget_s: float = Field(60.0, alias="BACKTEST_TIME_BUDGET_S", gt=0, le=3600)
    # Bearer token for /metrics. Unset: /metrics is open in local and test runs and refused elsewhere.
    metrics_token: str = Field("", alias="METRICS_TOKEN", repr=False)

    @model_validator(mode="after")
    def _webhook_secrets_key_usable(self) -> IngressSettings:
        SecretBox.from_settings(self)  # required outside local runs, and 32 bytes of base64 when given
        return self

    @model_validator(mode="after")
    def _metrics_token_long_enough(self) -> IngressSettings:
        if self.metrics_token and len(self.metrics_token) < 16:
            raise ValueError("METRICS_TOKEN must be at least 16 characters (openssl rand -hex 32)")
        return self

    @property
    def audit_api_url(self) -> str:
        return self.audit_api_url_override or f"http://127.0.0.1:{self.audit_api_port}"

    @property
    def spool_dir(self) -> Path:
        return Path(self.spool_dir_override) if self.spool_dir_override else self.state_dir / "spool" / "decisions"

    @property
    def receipt_keys_dir(self) -> Path:
        return (
            Path(self.receipt_keys_dir_override) if self.receipt_keys_dir_override else self.state_dir / "receipt-keys"
        )
