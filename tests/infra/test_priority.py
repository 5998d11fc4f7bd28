"""CPU priority by role (infra/priority.py): a background role lowers its own priority, in its own process."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

_PROBE = "import os, sys; from infra.priority import lower_cpu_priority; lower_cpu_priority(int(sys.argv[1]), 'probe');"
_PROBE += " print(os.nice(0))"


def _nice_after(increment: int) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(increment)], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_a_role_lowers_its_priority_by_its_increment_and_zero_leaves_it() -> None:
    ours = os.nice(0)
    assert _nice_after(0) == ours
    assert _nice_after(5) == min(19, ours + 5)
    assert os.nice(0) == ours  # only the child changed
