"""Targets, the markdown report and the plot, all made from the JSON summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.detection import meets_presidio

FIGURES = (
    "r1_throughput",
    "latency",
    "r2_engine",
    "policy_scaling",
    "context_scaling",
    "r4_writer",
    "end_to_end",
    "auth",
    "memory",
    "noisy_neighbour",
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
    lat = f["latency"]
    r2 = f["r2_engine"].get("ratio")
    scaling = f["policy_scaling"]["worst_ratio_1000_to_1"]
    r4 = f["r4_writer"]
    writer_vs_check = round(r4["writer_rows_per_s"] / r1["check_req_per_s"], 2) if r1["check_req_per_s"] else None
    e2e = f["end_to_end"]
    auth = f["auth"]
    mem = f["memory"]["ratio"]
    return {
        "r1_throughput": {
            "value": r1["ratio"],
            "target": ">= 0.5, errors = 0",
            "met": _met(r1["ratio"], (r1["ratio"] or 0) >= 0.5 and r1["errors"] == 0),
        },
        "latency": {
            "value": lat["p99_ratio"],
            "target": "check p99 / bare p99 <= 3 at 50% of the check's max rate",
            "met": _met(lat["p99_ratio"], (lat["p99_ratio"] or math.inf) <= 3),
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
        "r4_writer": {
            "value": r4["ratio"],
            "writer_vs_check_rate": writer_vs_check,
            "target": "writer / raw insert >= 0.5 and writer >= 5 x R1's check rate",
            "met": _met(r4["ratio"], r4["ratio"] >= 0.5 and (writer_vs_check or 0) >= 5),
        },
        "end_to_end": {
            "value": e2e["p99_s"],
            "target": f"p99 <= flush interval + 0.5 s = {e2e['flush_interval_s'] + 0.5} s",
            "met": _met(e2e["p99_s"], (e2e["p99_s"] or math.inf) <= e2e["flush_interval_s"] + 0.5),
        },
        "auth": {
            "value": auth["cache_hit_rate"],
            "target": f"hit rate >= 99.9%; bcrypt per 10k checks <= {auth['keys']} keys",
            "met": _met(
                auth["cache_hit_rate"],
                (auth["cache_hit_rate"] or 0) >= 0.999 and (auth["bcrypt_calls_per_10k_checks"] or 0) <= auth["keys"],
            ),
        },
        "memory": {"value": mem, "target": "<= 1.05", "met": _met(mem, (mem or math.inf) <= 1.05)},
        "noisy_neighbour": {
            "value": f["noisy_neighbour"]["p99_ratio"],
            "target": "victims' check p99 beside a tenant sending worst-case 1 MiB bodies / alone <= 2",
            "met": _met(f["noisy_neighbour"]["p99_ratio"], (f["noisy_neighbour"]["p99_ratio"] or math.inf) <= 2),
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


def _rounds(rounds: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['req_per_s']}, {r['drain_s']}, {r['sustained_req_per_s']}" for r in rounds)


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
        f"| pinning | server on CPU {summary['pinning']['server_cpu']}, load generator on CPU "
        f"{summary['pinning']['load_cpu']} |",
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
    r1 = f["r1_throughput"]
    lat = f["latency"]
    lines += [
        "",
        f"### R1 throughput (wrk, {r1['connections']} connections, one thread)",
        "",
        "| endpoint | sustained req/s (median) | errors | rounds: wrk req/s, writer drain s, sustained req/s |",
        "|---|---|---|---|",
        f"| `POST /v1/check` | {r1['check_req_per_s']} | {sum(r['errors'] for r in r1['rounds']['check'])} | "
        f"{_rounds(r1['rounds']['check'])} |",
        f"| `POST /bench/constant` | {r1['bare_req_per_s']} | {sum(r['errors'] for r in r1['rounds']['bare'])} | "
        f"{_rounds(r1['rounds']['bare'])} |",
        "",
        f"### Latency at {lat['rate_per_s']} req/s (constant rate, open loop)",
        "",
        "| endpoint | answered | errors | p50 ms | p99 ms | p99.9 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("check", "bare"):
        x = lat[name]
        lines.append(
            f"| {name} | {x['answered']} | {x['errors']} | {x['p50_ms']} | {x['p99_ms']} | {x['p999_ms']} "
            f"| {x['max_ms']} |"
        )
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
    lines += [
        "",
        "### Context scaling (personal-data scan)",
        "",
        "| context KiB | µs | µs per KiB |",
        "|---|---|---|",
    ]
    lines += [f"| {r['kib']} | {r['us']} | {r['us_per_kib']} |" for r in f["context_scaling"]["sizes"]]
    r4 = f["r4_writer"]
    e2e = f["end_to_end"]
    auth = f["auth"]
    mem = f["memory"]
    lines += [
        "",
        f"### R4 audit writer ({r4['rows']} rows, batches of {r4['batch_size']})",
        "",
        "| writer rows/s | raw insert rows/s | ratio | writer ÷ R1 check rate |",
        "|---|---|---|---|",
        f"| {r4['writer_rows_per_s']} | {r4['raw_insert_rows_per_s']} | {r4['ratio']} | "
        f"{targets['r4_writer']['writer_vs_check_rate']} |",
        "",
        f"### End to end (answered → queryable), under {e2e['under_load_per_s']} req/s",
        "",
        "| samples | never visible | p50 s | p99 s | max s | flush interval s | poll s |",
        "|---|---|---|---|---|---|---|",
        f"| {e2e['samples']} | {e2e['never_visible']} | {e2e['p50_s']} | {e2e['p99_s']} | {e2e['max_s']} | "
        f"{e2e['flush_interval_s']} | {e2e['poll_s']} |",
        "",
        f"### Auth ({auth['window']})",
        "",
        "| checks | cache hit rate | misses | records read again | bcrypt calls | per 10k checks | keys "
        "| bcrypt, whole run |",
        "|---|---|---|---|---|---|---|---|",
        f"| {auth['checks']} | {auth['cache_hit_rate']} | {auth['misses']} | {auth['record_reloads']} "
        f"| {auth['bcrypt_calls']} | "
        f"{auth['bcrypt_calls_per_10k_checks']} | {auth['keys']} | {auth['bcrypt_calls_whole_run']} |",
        "",
        f"### Memory ({mem['mode']})",
        "",
        "| RSS after the first part, MiB | RSS at the end, MiB | end at s | ratio | ratio of single samples |",
        "|---|---|---|---|---|",
        f"| {mem['rss_first_mib']} | {mem['rss_last_mib']} | {mem['last_sample_s']} | {mem['ratio']} "
        f"| {mem['single_samples_ratio']} |",
        "",
        "Each RSS is the median of the samples (one a second) over the half minute up to that point.",
        "",
        "Decisions published during the run: "
        + ", ".join(f"{int(count)} {outcome}" for outcome, count in f["publish_outcomes"].items())
        + " (spooled: Kafka did not acknowledge within the publish timeout; relayed later).",
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
    r1 = f["r1_throughput"]
    ax = axes[0][0]
    ax.bar(["bare", "/v1/check"], [r1["bare_req_per_s"], r1["check_req_per_s"]], color=["#999999", "#1f77b4"])
    ax.set_title(f"R1 max throughput (ratio {r1['ratio']})")
    ax.set_ylabel("req/s")
    lat = f["latency"]
    ax = axes[0][1]
    quantiles = ["p50_ms", "p99_ms", "p999_ms"]
    xs = range(len(quantiles))
    ax.bar([x - 0.2 for x in xs], [lat["bare"][q] for q in quantiles], width=0.4, label="bare", color="#999999")
    ax.bar([x + 0.2 for x in xs], [lat["check"][q] for q in quantiles], width=0.4, label="/v1/check", color="#1f77b4")
    ax.set_xticks(list(xs), ["p50", "p99", "p99.9"])
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.set_title(f"latency at {lat['rate_per_s']} req/s (p99 ratio {lat['p99_ratio']})")
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
    mem = f["memory"]
    ax = axes[1][1]
    ax.plot([s[0] for s in mem["samples"]], [s[1] for s in mem["samples"]])
    ax.set_xlabel("s since the load started")
    ax.set_ylabel("RSS MiB")
    ax.set_title(f"ingress RSS (ratio {mem['ratio']})")
    fig.suptitle(f"python -m bench ({summary['mode']}), {summary['started_at']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"written to {path}"
