"""Maximum sustained rate with wrk: one thread pinned to its own CPU, a Lua script for the POST body and the key.

Both endpoints of R1 get the same script, body, keys and connection count; only the path differs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.environment import pinned

_MARK = "BENCH_JSON "

_SCRIPT = """
local keys = {%(keys)s}
local body = %(body)s
local path = %(path)s
local n = 0
request = function()
  n = n + 1
  local headers = {}
  headers["Authorization"] = "Bearer " .. keys[(n %% #keys) + 1]
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", path, headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,'
    .. '"p50_us":%%d,"p99_us":%%d,"p999_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for ASCII text


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    p999_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "req_per_s": round(self.rate, 1),
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
        }


def wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "not installed"
    proc = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)  # noqa: S603
    return (proc.stdout + proc.stderr).strip().splitlines()[0] if (proc.stdout + proc.stderr).strip() else "unknown"


def write_script(folder: Path, name: str, *, path: str, body: bytes, keys: list[str]) -> Path:
    script = folder / f"{name}.lua"
    script.write_text(
        _SCRIPT
        % {
            "keys": ", ".join(_lua_string(k) for k in keys),
            "body": _lua_string(body.decode()),
            "path": _lua_string(path),
            "mark": _MARK,
        }
    )
    return script


def run_wrk(url: str, script: Path, *, seconds: float, connections: int, cpu: int | None) -> WrkResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: `make tools` (infra/local/stack.py tools wrk) installs it")
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.run(  # noqa: S603 - a fixed command line
        pinned(command, cpu), capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    data = json.loads(line[len(_MARK) :])
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        p999_ms=data["p999_us"] / 1000,
    )
