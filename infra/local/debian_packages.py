"""Installing what a local service or tool runs from Debian's packages (``apt-get``, through ``sudo -n`` unless
root). Standard library only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from infra.local.daemon import IS_ROOT, StackError


def apt_install(*packages: str) -> None:
    if shutil.which("apt-get") is None:
        raise StackError(f"cannot install {', '.join(packages)}: no apt-get on this machine; install them by hand")
    prefix = [] if IS_ROOT else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing {' '.join(packages)} from Debian's packages ...", flush=True)
    update = subprocess.run([*prefix, "apt-get", "update", "-qq"], check=False, text=True, capture_output=True, env=env)
    if update.returncode != 0:
        print(update.stderr[-2000:], file=sys.stderr)
    proc = subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=False,
        text=True,
        capture_output=True,
        env=env,
    )
    if proc.returncode != 0:
        raise StackError(f"apt-get install {' '.join(packages)} failed:\n{proc.stderr[-3000:]}")
