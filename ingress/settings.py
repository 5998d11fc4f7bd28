"""Settings of the ingress deployable."""

from __future__ import annotations

from pydantic import Field

from infra.settings import CommonSettings


class IngressSettings(CommonSettings):
    api_host: str = Field("127.0.0.1", alias="API_HOST")
    api_port: int = Field(8000, alias="API_PORT")
    api_workers: int = Field(1, alias="API_WORKERS", ge=1)
    key_cache_ttl_s: float = Field(300.0, alias="KEY_CACHE_TTL_S", gt=0)
    bcrypt_rounds: int = Field(12, alias="BCRYPT_ROUNDS", ge=4, le=16)
    ready_timeout_s: float = Field(1.0, alias="READY_TIMEOUT_S", gt=0)
