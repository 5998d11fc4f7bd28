"""``python -m bench.profile [--seconds N] [--path /v1/check]``: where the server spends its time under load.

Starts the bench server as ``python -m bench`` does (its own database, topics, port and tenants), warms it
up, then loads the path with wrk while py-spy (``pip install py-spy``) samples the server. Writes the collapsed
stacks to ``.state/bench/profile.txt`` (for a flame graph tool) and prints the largest shares: inclusive for the
functions of our packages, own time for everything.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import sys
from pathlib import Path
from subprocess import DEVNULL

import httpx
import orjson

from bench.environment import BENCH_STATE, BenchEnvironment, Services
from bench.workload import GUIDE_RULES, GUIDE_STEP4
from bench.wrk import run_wrk, write_script

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


async def _profile(seconds: float, path: str, out: Path) -> None:
    env = BenchEnvironment(Services.from_environment())
    await env.create_database()
    try:
        with env.server(cpu=1) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                tenant = await env.create_tenant(http, "profile", keys=2, rules=GUIDE_RULES)
            script = write_script(env.state, "profile", path=path, body=orjson.dumps(GUIDE_STEP4), keys=tenant.keys)
            await asyncio.to_thread(run_wrk, server.url, script, seconds=5, connections=32, cpu=0)
            command = [_py_spy(), "record", "-p", str(server.pid), "-d", str(int(seconds)), "-r", "100"]
            spy = await asyncio.create_subprocess_exec(
                *command, "-f", "raw", "-o", str(out), "--nonblocking", stdout=DEVNULL, stderr=DEVNULL
            )
            load = await asyncio.to_thread(run_wrk, server.url, script, seconds=seconds, connections=32, cpu=0)
            await asyncio.wait_for(spy.wait(), seconds + 30)
            sys.stdout.write(f"{path}: {load.rate:.0f} req/s while sampled (py-spy slows the server)\n")
    finally:
        await env.drop_database()
        await env.delete_topics()
        env.remove_state()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--path", default="/v1/check")
    parser.add_argument("--out", type=Path, default=BENCH_STATE / "profile.txt")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(_profile(args.seconds, args.path, args.out))
    sys.stdout.write(report(args.out) + "\n")


if __name__ == "__main__":
    main()
