"""Targets, the markdown report and the plot, all made from the JSON summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.detection import meets_presidio

FIGURES = (
    "slo_rate",
    "overhead",
    "cpu_per_decision",
    "cold_start",
    "r4_writer",
    "end_to_end",
    "heavy_reads",
    "r1_throughput",
    "r2_engine",
    "policy_scaling",
    "context_scaling",
    "detection_quality",
    "detection_speed",
    "detection_cost",
)
BEGIN = "<!-- bench:begin (written by python -m bench; edit outside these markers) -->"
END = "<!-- bench:end -->"


def _met(value: Any, test: bool) -> bool | None:
    return None if value is None else test


def evaluate(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each figure's target and whether this run met it (None: not measured)."""
    f = summary["figures"]
    r1 = f["r1_throughput"]
    slo = f["slo_rate"]
    over = f["overhead"]
    cpu = f["cpu_per_decision"]
    cold = f["cold_start"]
    r2 = f["r2_engine"].get("ratio")
    scaling = f["policy_scaling"]["worst_ratio_1000_to_1"]
    r4 = f["r4_writer"]
    slo_check = slo["check"]["rate_per_s"]
    writer_vs_slo = round(r4["writer_rows_per_s"] / slo_check, 2) if slo_check else None
    e2e = f["end_to_end"]
    heavy = f["heavy_reads"]
    recovered = cold["recovered_after_s"]
    return {
        "slo_rate": {
            "value": slo["ratio"],
            "target": "highest rate with p99 <= 10 ms, all 200, none spooled: check / bare FastAPI >= 0.5",
            "met": _met(slo["ratio"], (slo["ratio"] or 0) >= 0.5),
        },
        "overhead": {
            "value": over["ms"],
            "target": f"p99 check - bare - raw produce at {over['rate_per_s']}/s (half the SLO rate) <= 2 ms",
            "met": _met(over["ms"], over["ms"] <= 2),
        },
        "cpu_per_decision": {
            "value": cpu["ratio"],
            "target": "CPU of all our processes per check / bare FastAPI's per request <= 2.5",
            "met": _met(cpu["ratio"], (cpu["ratio"] or math.inf) <= 2.5),
        },
        "cold_start": {
            "value": recovered,
            "target": f"s from restarting the check processes until p99 <= 10 ms ({cold['good_windows_needed']} s "
            f"in a row) at {cold['rate_per_s']}/s over {cold['keys']} keys <= 5, none unanswered",
            "met": _met(recovered, recovered is not None and recovered <= 5 and cold["unanswered"] == 0),
        },
        "r4_writer": {
            "value": r4["ratio"],
            "writer_vs_slo_rate": writer_vs_slo,
            "target": "writer / raw insert >= 0.5 and writer >= 5 x the check's SLO rate",
            "met": _met(r4["ratio"], r4["ratio"] >= 0.5 and (writer_vs_slo or 0) >= 5),
        },
        "end_to_end": {
            "value": e2e["p99_s"],
            "target": "check answered -> row queryable p99 <= flush interval + 0.5 s = "
            f"{e2e['flush_interval_s'] + 0.5} s",
            "met": _met(e2e["p99_s"], (e2e["p99_s"] or math.inf) <= e2e["flush_interval_s"] + 0.5),
        },
        "heavy_reads": {
            "value": heavy["p99_ratio"],
            "target": f"check p99 at {heavy['rate_per_s']}/s beside a full export and a backtest over "
            f"{heavy['stored_events']} events / alone <= 1.2",
            "met": _met(heavy["p99_ratio"], (heavy["p99_ratio"] or math.inf) <= 1.2 and not heavy["work"]["errors"]),
        },
        "r1_throughput": {
            "value": r1["ratio"],
            "target": "closed loop (wrk) check / bare, reported (kept from the first issue: >= 0.5)",
            "met": _met(r1["ratio"], (r1["ratio"] or 0) >= 0.5 and r1["errors"] == 0),
        },
        "r2_engine": {"value": r2, "target": "engine / OPA <= 1", "met": _met(r2, (r2 or math.inf) <= 1)},
        "policy_scaling": {
            "value": scaling,
            "target": "1000 policies / 1 policy <= 1.5 (worst of identical and distinct rules)",
            "met": _met(scaling, scaling <= 1.5),
        },
        "context_scaling": {
            "value": f["context_scaling"]["us_per_kib_largest_to_smallest"],
            "target": "linear (µs per KiB flat from 1 KiB to 1 MiB), reported",
            "met": None,
        },
        **_detection_targets(f),
    }


def _detection_targets(f: dict[str, Any]) -> dict[str, dict[str, Any]]:
    quality = f["detection_quality"]
    ours = quality.get("ours")
    shared = ours["all_shared"] if isinstance(ours, dict) else None
    speed_value = f["detection_speed"]["ratio"]
    cost = f["detection_cost"]
    return {
        "detection_quality": {
            "value": f"recall {shared['recall']}, precision {shared['precision']}" if shared else None,
            "target": "recall and precision >= Presidio's for each of the six shared categories; the four context "
            "categories detected",
            "met": meets_presidio(quality),
        },
        "detection_speed": {
            "value": speed_value,
            "target": ">= 100 x Presidio's pattern recognizers (case list and a 1 MiB text, the lower)",
            "met": _met(speed_value, (speed_value or 0) >= 100),
        },
        "detection_cost": {
            "value": f"worst {cost['worst_us_per_kib']} µs/KiB ({cost['worst_shape']}); growth {cost['max_growth']}",
            "target": "64 KiB / 8 KiB <= 10 for every worst-case shape (linear is 8)",
            "met": cost["max_growth"] <= 10,
        },
    }


def _yes(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "reported"}[met]


def _agrees(inputs: dict[str, bool] | None) -> str:
    if inputs is None:
        return "not run"
    return ", ".join(f"{name} input: {'yes' if same else '**no**'}" for name, same in inputs.items())


def _run_row(name: str, x: dict[str, Any]) -> str:
    return (
        f"| {name} | {x.get('rate', '')} | {x.get('answered', x.get('acked'))} | {x.get('errors')} | {x['p50_ms']} "
        f"| {x['p99_ms']} | {x['p999_ms']} | {x['max_ms']} | {x.get('spooled', '')} "
        f"| {x.get('cpu_ms_per_request', '')} |"
    )


_RUN_HEAD = [
    "| side | rate/s | answered | errors | p50 ms | p99 ms | p99.9 ms | max ms | spooled | CPU ms per request |",
    "|---|---|---|---|---|---|---|---|---|---|",
]


def markdown(summary: dict[str, Any]) -> str:
    """The generated part of docs/benchmarks.md."""
    f = summary["figures"]
    targets = summary["targets"]
    m = summary["machine"]
    lines = [
        BEGIN,
        "",
        f"Recorded {summary['started_at']} in **{summary['mode']}** mode, {summary['duration_s']:.0f} s.",
        "",
        "| machine | |",
        "|---|---|",
        f"| cores | {m['cores']} ({m['cpu_model']}), {m['memory_gib']} GiB |",
        f"| pinning | check processes and the bare server on CPU {summary['pinning']['server_cpu']}, load generator "
        f"on CPU {summary['pinning']['load_cpu']}, everything else floating |",
        f"| load average at start | {', '.join(map(str, m['load_average_at_start']))} |",
        f"| Python | {m['python']} |",
        f"| Kafka | {m['kafka']} |",
        f"| ClickHouse | {m['clickhouse']} |",
        f"| OPA | {m.get('opa', 'not run')} |",
        f"| wrk | {m['wrk']} |",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
    ]
    for name in FIGURES:
        t = targets[name]
        lines.append(f"| {name} | {t['value']} | {t['target']} | {_yes(t['met'])} |")
    slo = f["slo_rate"]
    lines += [
        "",
        "### SLO rate (open loop, 50 customers x 10 keys at random, the guide's step 4 and 1 in 4 with personal data)",
        "",
        "| side | rate within the SLO /s | first miss /s | rates tried (p99 ms, ok) |",
        "|---|---|---|---|",
    ]
    for name in ("check", "bare"):
        x = slo[name]
        tried = "; ".join(f"{t['rate']}: {t['p99_ms']}{'' if t['ok'] else ' x'}" for t in x["trials"])
        lines.append(f"| {name} | {x['rate_per_s']} | {x['first_miss_per_s']} | {tried} |")
    over = f["overhead"]
    lines += ["", f"### Overhead and CPU at {over['rate_per_s']}/s (half the check's SLO rate)", "", *_RUN_HEAD]
    lines += [
        _run_row("check", over["check"]),
        _run_row("bare", over["bare"]),
        _run_row("raw produce", over["raw_produce"]),
    ]
    cpu = f["cpu_per_decision"]
    lines += [
        "",
        f"Raw produce: aiokafka, acks=all, idempotent, {over['raw_produce']['event_bytes']}-byte events (a decision "
        f"event's size). CPU: every process of the stack ({', '.join(cpu['processes'])}, with their children) "
        "from /proc, against the bare server's processes.",
    ]
    cold = f["cold_start"]
    windows = ", ".join(f"{w['p99_ms']}" for w in cold["load"]["windows"])
    lines += [
        "",
        f"### Cold start ({cold['rate_per_s']}/s over {cold['keys']} keys, check processes restarted at "
        f"{cold['restart_at_s']} s)",
        "",
        "| restart to ready s | recovered after s | unanswered | errors | p99 ms per second of the run |",
        "|---|---|---|---|---|",
        f"| {cold['restart_to_ready_s']} | {cold['recovered_after_s']} | {cold['unanswered']} | {cold['errors']} "
        f"| {windows} |",
    ]
    heavy = f["heavy_reads"]
    work = heavy["work"]
    lines += [
        "",
        f"### Check beside a full export and a backtest ({heavy['stored_events']} stored events)",
        "",
        *_RUN_HEAD,
        _run_row("alone", heavy["alone"]),
        _run_row("beside", heavy["beside"]),
        "",
        f"Meanwhile: {work['exports']} full exports ({work['rows_exported']} rows), {work['backtests']} backtests, "
        f"errors: {work['errors'] or 'none'}.",
    ]
    r1 = f["r1_throughput"]
    lines += [
        "",
        f"### R1 throughput (wrk, {r1['connections']} connections, one thread)",
        "",
        "| endpoint | req/s (median) | errors | rounds req/s |",
        "|---|---|---|---|",
        f"| `POST /v1/check` | {r1['check_req_per_s']} | {sum(r['errors'] for r in r1['rounds']['check'])} | "
        + ", ".join(str(r["req_per_s"]) for r in r1["rounds"]["check"])
        + " |",
        f"| bare | {r1['bare_req_per_s']} | {sum(r['errors'] for r in r1['rounds']['bare'])} | "
        + ", ".join(str(r["req_per_s"]) for r in r1["rounds"]["bare"])
        + " |",
    ]
    r2 = f["r2_engine"]
    lines += [
        "",
        "### R2 engine vs OPA (in process, per decision, 1 KiB context, the guide's policy)",
        "",
        "| engine µs | OPA µs | ratio | OPA decides as the engine |",
        "|---|---|---|---|",
        f"| {r2['engine_us_per_decision']} | {r2.get('opa_us_per_decision', r2.get('opa'))} | {r2.get('ratio')} | "
        f"{_agrees(r2.get('opa_decides_as_engine'))} |",
        "",
        "### Policy scaling (µs per decision)",
        "",
        "| rules | "
        + " | ".join(f"{n} policies" for n in f["policy_scaling"]["identical_rules"]["us_per_decision"])
        + " | 1000 ÷ 1 |",
        "|---|" + "---|" * (len(f["policy_scaling"]["identical_rules"]["us_per_decision"]) + 1),
    ]
    for label in ("identical_rules", "distinct_rules"):
        row = f["policy_scaling"][label]
        lines.append(
            f"| {label.replace('_', ' ')} | "
            + " | ".join(str(v) for v in row["us_per_decision"].values())
            + f" | {row['ratio_1000_to_1']} |"
        )
    lines += ["", "### Context scaling (personal-data scan)", "", "| context KiB | µs | µs per KiB |", "|---|---|---|"]
    lines += [f"| {r['kib']} | {r['us']} | {r['us_per_kib']} |" for r in f["context_scaling"]["sizes"]]
    r4 = f["r4_writer"]
    e2e = f["end_to_end"]
    lines += [
        "",
        f"### R4 audit writer ({r4['rows']} rows, batches of {r4['batch_size']})",
        "",
        "| writer rows/s | raw insert rows/s | ratio | writer ÷ the check's SLO rate |",
        "|---|---|---|---|",
        f"| {r4['writer_rows_per_s']} | {r4['raw_insert_rows_per_s']} | {r4['ratio']} | "
        f"{targets['r4_writer']['writer_vs_slo_rate']} |",
        "",
        f"### Pipeline (answered → queryable through :8000), under {e2e['under_load_per_s']} req/s",
        "",
        "| samples | never visible | p50 s | p99 s | max s | flush interval s | poll s |",
        "|---|---|---|---|---|---|---|",
        f"| {e2e['samples']} | {e2e['never_visible']} | {e2e['p50_s']} | {e2e['p99_s']} | {e2e['max_s']} | "
        f"{e2e['flush_interval_s']} | {e2e['poll_s']} |",
        "",
        "Decisions published during the run: "
        + ", ".join(f"{int(count)} {outcome}" for outcome, count in f["publish_outcomes"].items())
        + " (spooled: Kafka did not acknowledge within the publish deadline; relayed later).",
        "",
        END,
    ]
    lines += _detection_lines(f)
    return "\n".join(lines) + "\n"


def _detection_lines(f: dict[str, Any]) -> list[str]:
    quality = f["detection_quality"]
    cost = f["detection_cost"]
    lines = ["", "### Personal-data detection against Presidio's own cases", ""]
    ours, theirs = quality.get("ours"), quality.get("presidio")
    if not isinstance(ours, dict):
        return [*lines, f"Not measured: {quality.get('skipped')}"]
    lines += [
        f"{quality['cases']} texts; {quality['ip_excluded']} whose only addresses are loopback, unspecified or "
        "broadcast are left out of the IP figures on both sides (not reported on purpose).",
        "",
        "| category | our recall / precision | Presidio's |",
        "|---|---|---|",
    ]
    for category, figure in ours.items():
        other = theirs.get(category) if isinstance(theirs, dict) else None
        shown = f"{other['recall']} / {other['precision']}" if other else str(theirs)
        lines.append(f"| {category} | {figure['recall']} / {figure['precision']} | {shown} |")
    if isinstance(theirs, dict):
        lines += [
            "",
            f"Speed (CPU seconds): the case list {quality['ours_seconds_per_pass']:.4f} s against "
            f"{quality['presidio_seconds_per_pass']:.2f} s ({quality['speed_ratio_cases']} x); a 1 MiB text "
            f"{quality['ours_seconds_per_mib']:.3f} s against {quality['presidio_seconds_per_mib']:.1f} s "
            f"({quality['speed_ratio_mib']} x).",
        ]
    lines += [
        "",
        f"Worst-case shapes: worst {cost['worst_us_per_kib']} µs per KiB ({cost['worst_shape']}), steepest growth "
        f"from 8 to 64 KiB {cost['max_growth']} ({cost['steepest_shape']}; linear is 8).",
    ]
    return lines


def write_markdown(path: Path, summary: dict[str, Any]) -> None:
    """Replace the generated part of ``path``, keeping what was written around it."""
    generated = markdown(summary)
    text = path.read_text() if path.exists() else "# Benchmarks\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END + "\n") if END + "\n" in rest else rest.partition(END)
        text = head + generated + tail
    else:
        text = text.rstrip() + "\n\n" + generated
    path.write_text(text)


def write_plot(path: Path, summary: dict[str, Any]) -> str:
    """The PNG of throughput, latency, policy scaling and memory; returns what was done."""
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
