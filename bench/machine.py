"""What the figures were measured on."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

from bench.wrk import wrk_version
from infra.settings import PROJECT_ROOT


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _kafka_version() -> str:
    # The local stack's broker runs from the jars it fetched into .state/kafka/libs.
    state = Path(os.environ.get("GOVERNANCE_STATE_DIR", PROJECT_ROOT / ".state"))
    for jar in sorted((state / "kafka" / "libs").glob("kafka-clients-*.jar")):
        found = re.match(r"kafka-clients-(.+)\.jar", jar.name)
        if found:
            return found.group(1)
    return "unknown"


def _clickhouse_version() -> str:
    try:
        import chdb

        return f"chdb {chdb.__version__} (ClickHouse {chdb.engine_version})"
    except (ImportError, AttributeError):
        return "unknown"


def describe_machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kafka": _kafka_version(),
        "clickhouse": _clickhouse_version(),
        "wrk": wrk_version(),
        "load_average_at_start": [round(x, 2) for x in load],
    }
