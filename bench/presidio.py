"""Presidio for the detection comparison: a virtual environment of its own (a bench-only dependency, kept out of
the project's), made once in the bench's state folder, and its side run there as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path
from typing import Any

PRESIDIO_VERSION = "2.2.366"
_REQUIREMENT = f"presidio-analyzer=={PRESIDIO_VERSION}"
_ROOT = Path(__file__).resolve().parents[1]


class PresidioUnavailable(RuntimeError):
    """presidio-analyzer could not be installed here."""


def presidio_python(cache: Path, *, install: bool) -> Path | None:
    """The interpreter of the environment that has presidio-analyzer, made when ``install`` and missing."""
    folder = cache / f"presidio-{PRESIDIO_VERSION}"
    python = folder / "bin" / "python"
    if (folder / ".installed").exists():
        return python
    if not install:
        return None
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    done = subprocess.run(  # noqa: S603 - our own interpreter, a pinned package
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", _REQUIREMENT],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode != 0:
        raise PresidioUnavailable(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "pip failed")
    (folder / ".installed").touch()
    return python


def presidio_side(python: Path, corpus: Path, minimum_s: float, large: Path) -> dict[str, Any]:
    """Presidio's figures and timings on the corpus (``presidio_side.py``, run by that interpreter)."""
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    done = subprocess.run(  # noqa: S603 - our own module
        [str(python), "-m", "bench.presidio_side", str(corpus), str(minimum_s), str(large)],
        cwd=_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode != 0:
        raise PresidioUnavailable(done.stderr.strip()[-2000:] or "presidio side failed")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
