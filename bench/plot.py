"""The PNG of docs/benchmarks.png (throughput, latency, policy scaling and cold start), made from the JSON
summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_plot(path: Path, summary: dict[str, Any]) -> str:
    """Write the PNG of throughput, latency, policy scaling and cold start to ``path``; returns what was done."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "skipped: matplotlib is not installed (a dev dependency)"
    f = summary["figures"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    slo = f["slo_rate"]
    ax = axes[0][0]
    ax.bar(["bare", "/v1/check"], [slo["bare"]["rate_per_s"], slo["check"]["rate_per_s"]], color=["#999999", "#1f77b4"])
    ax.set_title(f"rate within p99 <= 10 ms (ratio {slo['ratio']})")
    ax.set_ylabel("req/s")
    over = f["overhead"]
    ax = axes[0][1]
    quantiles = ["p50_ms", "p99_ms", "p999_ms"]
    xs = range(len(quantiles))
    sides = (("bare", "bare", "#999999"), ("raw_produce", "raw produce", "#ff7f0e"), ("check", "/v1/check", "#1f77b4"))
    for offset, (key, label, colour) in zip((-0.27, 0.0, 0.27), sides, strict=True):
        ax.bar([x + offset for x in xs], [over[key][q] for q in quantiles], width=0.27, label=label, color=colour)
    ax.set_xticks(list(xs), ["p50", "p99", "p99.9"])
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.set_title(f"latency at {over['rate_per_s']} req/s (overhead {over['ms']} ms)")
    ax.legend()
    ax = axes[1][0]
    for label in ("identical_rules", "distinct_rules"):
        row = f["policy_scaling"][label]["us_per_decision"]
        ax.plot([int(k) for k in row], list(row.values()), marker="o", label=label.replace("_", " "))
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("policies per customer")
    ax.set_ylabel("µs per decision")
    ax.set_title("engine: policy scaling")
    ax.legend()
    cold = f["cold_start"]
    ax = axes[1][1]
    windows = cold["load"]["windows"]
    ax.plot([w["s"] for w in windows], [w["p99_ms"] for w in windows], marker=".")
    ax.axvline(cold["restart_at_s"], color="#d62728", linestyle="--", label="restart")
    ax.axhline(10, color="#999999", linestyle=":", label="10 ms")
    ax.set_yscale("log")
    ax.set_xlabel("s into the run")
    ax.set_ylabel("p99 ms per second")
    ax.set_title(f"cold start at {cold['rate_per_s']}/s (recovered after {cold['recovered_after_s']} s)")
    ax.legend()
    fig.suptitle(f"python -m bench ({summary['mode']}), {summary['started_at']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"written to {path}"
