"""Settings of the workers deployable."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from infra.settings import CommonSettings


class WorkersSettings(CommonSettings):
    spool_dir_override: str = Field("", alias="SPOOL_DIR")
    relay_interval_s: float = Field(1.0, alias="RELAY_INTERVAL_S", gt=0)

    @property
    def spool_dir(self) -> Path:
        return Path(self.spool_dir_override) if self.spool_dir_override else self.state_dir / "spool" / "decisions"
