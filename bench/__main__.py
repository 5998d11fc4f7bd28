"""``python -m bench [--quick | --mode smoke] [--json PATH] [--markdown PATH] [--plot PATH] [--opa MODE]``

Runs every figure against the local stack (PostgreSQL, Redis, Kafka running; see ``make services``), prints the
JSON summary on stdout and, unless ``--no-docs``, rewrites the generated part of docs/benchmarks.md and
docs/benchmarks.png. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from bench.environment import BENCH_STATE
from bench.plan import PLANS
from bench.plot import write_plot
from bench.report import write_markdown
from bench.run import Run, say
from bench.targets import evaluate
from infra.settings import PROJECT_ROOT


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(PLANS), default="full")
    parser.add_argument("--quick", action="store_const", const="quick", dest="mode", help="the same as --mode quick")
    parser.add_argument("--json", type=Path, default=BENCH_STATE / "summary.json", help="where to keep the summary")
    parser.add_argument("--markdown", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--plot", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.png")
    parser.add_argument("--no-docs", action="store_true", help="write neither the markdown nor the plot")
    parser.add_argument(
        "--opa",
        choices=("build", "cached", "skip"),
        default="build",
        help="build OPA when it is not cached (default), use it only if cached, or leave R2's OPA side out",
    )
    parser.add_argument(
        "--from-summary", type=Path, help="measure nothing: write the markdown and the plot from this summary"
    )
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--load-cpu", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.from_summary is not None:
        summary = json.loads(args.from_summary.read_text())
        summary["targets"] = evaluate(summary)  # judged by the targets as they are now
        write_markdown(args.markdown, summary)
        say(f"plot {write_plot(args.plot, summary)}")
        return 0
    plan = PLANS[args.mode]
    run = Run(plan, opa_mode=args.opa, server_cpu=args.server_cpu, load_cpu=args.load_cpu)
    summary = asyncio.run(run.execute())
    summary["targets"] = evaluate(summary)
    if not args.no_docs:
        write_markdown(args.markdown, summary)
        summary["plot"] = write_plot(args.plot, summary)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=2)
    args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    missed = [name for name, target in summary["targets"].items() if target["met"] is False]
    say(f"done in {summary['duration_s']:.0f} s ({plan.mode} mode); targets missed: {', '.join(missed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
