"""``stack.py tools``: what the tests and benchmarks use besides the services, installed from Debian's packages
when missing, and Docker Compose built once as a docker CLI plugin when the docker client has none. Standard
library only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from infra.local.daemon import STATE, StackError, run
from infra.local.debian_packages import apt_install

# Tools the test suite and benchmarks use, by the binary that proves each is there.
TOOLS: dict[str, str] = {
    "promtool": "prometheus",  # checks the Prometheus rules and scrape config
    "prometheus": "prometheus",  # scrapes test processes: every dashboard panel and alert rule evaluated on real data
    "chromium": "chromium",  # dashboard browser tests (driven by Playwright, no browser download)
    "wrk": "wrk",  # HTTP load generator for benchmarks
    "jq": "jq",  # the docs' shell examples read JSON with it (tests/e2e/test_docs_examples.py runs them)
    "node": "nodejs",  # runs the official AsyncAPI parser (tests/e2e/test_contracts.py)
    "npm": "npm",  # installs that parser into .state/tools
}


COMPOSE_VERSION = "v2.40.3"
COMPOSE_PLUGIN = Path.home() / ".docker" / "cli-plugins" / "docker-compose"


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return run(["docker", "compose", "version"], check=False).returncode == 0


def _install_compose_plugin() -> None:
    """Build Docker Compose from the Go module proxy as a docker CLI plugin, so `docker compose config` can
    validate docker-compose.yml on a machine whose docker client came without it (no engine is needed)."""
    if shutil.which("go") is None:
        raise StackError("docker compose: the plugin is missing and there is no Go toolchain to build it")
    build = STATE / "compose-build"
    build.mkdir(parents=True, exist_ok=True)
    (build / "go.mod").write_text("module local/composebuild\n\ngo 1.24\n")
    print(f"building docker compose {COMPOSE_VERSION} from the Go module proxy (a few minutes, once) ...", flush=True)
    env = dict(os.environ, GOFLAGS="-mod=mod")
    for cmd in (
        ["go", "get", f"github.com/docker/compose/v2/cmd@{COMPOSE_VERSION}"],
        ["go", "build", "-o", str(COMPOSE_PLUGIN), "github.com/docker/compose/v2/cmd"],
    ):
        proc = subprocess.run(cmd, cwd=build, check=False, text=True, capture_output=True, env=env)
        if proc.returncode != 0:
            raise StackError(f"docker compose: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")


def tools(names: list[str]) -> int:
    wanted = names or [*TOOLS, "compose"]
    missing = [TOOLS[n] for n in wanted if n in TOOLS and shutil.which(n) is None]
    try:
        if missing:
            apt_install(*missing)
        if "compose" in wanted and shutil.which("docker") is not None and not _compose_available():
            _install_compose_plugin()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name in wanted:
        if name == "compose":
            print(f"{name:<10} {'docker compose' if _compose_available() else 'missing'}")
        else:
            print(f"{name:<10} {shutil.which(name) or 'missing'}")
    return 0
