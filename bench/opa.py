"""Open Policy Agent, built from the Go module proxy once and cached, evaluating ``governance.rego``.

R2 compares in-process evaluation with in-process evaluation: ``opa bench`` prepares the query once and times
``Eval`` per decision (its input parsed once), and the engine side times ``decide`` on an already parsed request.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.workload import GUIDE_RULES, KIB, check_request, policy_set
from ingress.engine import decide
from schemas.check import CheckRequest
from schemas.policy_rules import PolicyRules

OPA_VERSION = "v1.22.3"
POLICY = Path(__file__).with_name("governance.rego")
QUERY = "data.governance.decision"


class OpaUnavailable(RuntimeError):
    """OPA is not cached and could not be built (no Go toolchain, or the module proxy refused)."""


def opa_binary(cache: Path, *, build: bool = True) -> Path | None:
    """The cached ``opa`` of ``OPA_VERSION``, built into ``cache`` first when missing (a few minutes, once)."""
    binary = cache / f"opa-{OPA_VERSION}"
    if binary.exists():
        return binary
    if not build:
        return None
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise OpaUnavailable("no Go toolchain to build OPA with; install Go or put an opa binary at " + str(binary))
    gobin = cache / "gobin"
    gobin.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(gobin), GOFLAGS="-mod=mod")
    proc = subprocess.run(  # noqa: S603 - a fixed command line
        [go, "install", f"github.com/open-policy-agent/opa@{OPA_VERSION}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise OpaUnavailable(f"go install opa@{OPA_VERSION} failed:\n{proc.stderr[-2000:]}")
    (gobin / "opa").replace(binary)
    return binary


def _write_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    clean = check_request(KIB)
    personal = check_request(KIB)
    personal["context"]["contact"] = "write to jane.doe@example.com or call +44 20 7946 0958"
    files = {
        "data": folder / "data.json",
        "clean": folder / "input-clean.json",
        "personal": folder / "input-personal.json",
    }
    rules = PolicyRules.model_validate(GUIDE_RULES).model_dump(mode="json")
    files["data"].write_text(json.dumps({"policies": [rules]}))
    files["clean"].write_text(json.dumps(clean))
    files["personal"].write_text(json.dumps(personal))
    return files


def _opa(binary: Path, *args: str, timeout: float = 600) -> str:
    proc = subprocess.run(  # noqa: S603 - our binary, our arguments
        [str(binary), *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if proc.returncode != 0:
        raise OpaUnavailable(f"opa {args[0]} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def opa_decision_us(binary: Path, folder: Path, *, count: int) -> dict[str, Any]:
    """OPA's microseconds per decision on the same input and policy as ``engine.decision_us``, and whether OPA
    decides as the engine does (allowed and score) on a clean and a personal-data input."""
    files = _write_inputs(folder)
    agrees = {}
    for name in ("clean", "personal"):
        out = json.loads(
            _opa(
                binary, "eval", "-f", "json", "-d", str(POLICY), "-d", str(files["data"]), "-i", str(files[name]), QUERY
            )
        )
        opa = out["result"][0]["expressions"][0]["value"]
        request = CheckRequest.model_validate(json.loads(files[name].read_text()))
        engine = decide(request, policy_set(1, distinct=False))
        agrees[name] = opa["allowed"] == engine.allowed and opa["risk_score"] == engine.risk_score
    runs = []
    for _ in range(max(1, count)):
        out = json.loads(
            _opa(
                binary,
                "bench",
                "-f",
                "json",
                "--benchmem=false",
                "--metrics=false",
                "-d",
                str(POLICY),
                "-d",
                str(files["data"]),
                "-i",
                str(files["clean"]),
                QUERY,
            )
        )
        runs.append(out["T"] / out["N"] / 1000)
    runs.sort()
    return {"us_per_decision": round(runs[len(runs) // 2], 1), "runs": len(runs), "decides_as_engine": agrees}


def opa_version(binary: Path) -> str:
    first = _opa(binary, "version").splitlines()[0]
    return first.split(":", 1)[1].strip() if ":" in first else first
