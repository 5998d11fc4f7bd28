"""``python -m bench.profile [--seconds N] [--rate R]``: where a check process spends its time under load.

Starts the make up stack as ``python -m bench`` does (``bench.stack``: its own database, topics, ports and the 500
keys), warms it up, then sends open-loop checks at ``--rate`` while py-spy (a dev dependency) samples one of the
check processes. Writes the collapsed
stacks to ``.state/bench/profile.txt`` (for a flame graph tool) and prints the largest shares: inclusive for the
functions of our packages, own time for everything.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import re
import shutil
import sys
from pathlib import Path
from subprocess import DEVNULL

from bench.environment import BENCH_STATE, BenchEnvironment, Services, cpu_count
from bench.plan import PLANS
from bench.run import say
from bench.stack import Stack, bare_server, process_tree
from bench.stack_run import StackRun

OURS = ("ingress/", "consumers/", "infra/", "schemas/")


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def shares(collapsed: Path) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Samples in all, and per function (``name (file)``) the samples it is on the stack of and at the top of."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    return total, inclusive, own


def report(collapsed: Path, top: int = 25) -> str:
    total, inclusive, own = shares(collapsed)
    lines = [f"{total} samples", "", "inclusive, our code:"]
    ours = [(f, n) for f, n in inclusive.most_common() if any(p in f for p in OURS) and "infra/bench" not in f]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in ours[:top]]
    lines += ["", "own time, everything:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def _check_worker(stack: Stack) -> int:
    """One of uvicorn's worker processes under the check path's parent (not its resource tracker)."""
    root = stack.roots()["ingress"]
    for pid in process_tree([root]):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"spawn_main" in cmdline and b"--multiprocessing-fork" in cmdline:
            return pid
    return root  # one worker: the parent serves


async def _profile(seconds: float, rate: float, out: Path) -> None:
    """The make up stack as ``python -m bench`` starts it (500 keys, the same load), one check process sampled."""
    env = BenchEnvironment(Services.from_environment())
    await env.create_database()
    stack = Stack(env, "1" if cpu_count() >= 2 else None)
    plan = dataclasses.replace(PLANS["quick"], warmup_s=4)
    try:
        await stack.start()
        with bare_server(env, stack.ingress_cpus) as bare:
            run = StackRun(plan, env, stack, bare, load_cpu=0 if cpu_count() >= 2 else None, say=say)
            try:
                await run.tenants()
                command = [_py_spy(), "record", "-p", str(_check_worker(stack)), "-d", str(int(seconds)), "-r", "100"]
                spy = await asyncio.create_subprocess_exec(
                    *command, "-f", "raw", "-o", str(out), "--nonblocking", stdout=DEVNULL, stderr=DEVNULL
                )
                result = await run.check(rate, seconds + 2)
                await asyncio.wait_for(spy.wait(), seconds + 30)
                sys.stdout.write(
                    f"/v1/check at {rate}/s while sampled: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
                    f"{result['spooled']:.0f} spooled, CPU ms per check by process "
                    f"{result['cpu_ms_per_request_by_process']}\n"
                )
            finally:
                await run.close()
    finally:
        await stack.stop()
        await env.drop_database()
        await env.delete_topics()
        env.remove_state()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0, help="constant checks per second while sampling")
    parser.add_argument("--out", type=Path, default=BENCH_STATE / "profile.txt")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(_profile(args.seconds, args.rate, args.out))
    sys.stdout.write(report(args.out) + "\n")


if __name__ == "__main__":
    main()
