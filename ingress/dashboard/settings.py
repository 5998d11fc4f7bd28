"""Settings of the dashboard deployable."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.settings import ENV_FILES


class DashboardSettings(BaseSettings):
    """What the dashboard needs: where it listens, where the API is, how long a sign-in lasts."""

    model_config = SettingsConfigDict(env_file=ENV_FILES, env_file_encoding="utf-8", extra="ignore")

    # Unset means production, as for the other deployables (infra/settings.py).
    environment: Literal["local", "test", "staging", "production"] = Field("production", alias="ENVIRONMENT")
    dashboard_host: str = Field("127.0.0.1", alias="DASHBOARD_HOST")
    dashboard_port: int = Field(3000, alias="DASHBOARD_PORT", ge=1, le=65535)
    api_url: str = Field("http://127.0.0.1:8000", alias="API_URL", pattern=r"^https?://\S+$")
    api_timeout_s: float = Field(10.0, alias="DASHBOARD_API_TIMEOUT_S", gt=0)
    session_ttl_s: int = Field(8 * 3600, alias="DASHBOARD_SESSION_TTL_S", ge=60, le=7 * 24 * 3600)
    max_sessions: int = Field(1000, alias="DASHBOARD_MAX_SESSIONS", ge=1)
    # Local runs are plain http on loopback; anywhere else the cookie must only travel over https.
    cookie_secure: bool = Field(False, alias="DASHBOARD_COOKIE_SECURE")
    log_level: str = Field("INFO", alias="LOG_LEVEL")

    @model_validator(mode="after")
    def _secure_cookie_outside_local(self) -> DashboardSettings:
        if self.environment in {"staging", "production"} and not self.cookie_secure:
            raise ValueError("DASHBOARD_COOKIE_SECURE must be true outside local and test runs (serve over https)")
        return self

    @property
    def api_base(self) -> str:
        return self.api_url.rstrip("/")
