"""The markdown report: the generated part of docs/benchmarks.md, made from the JSON summary and its targets
(``bench/targets.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.targets import FIGURES

BEGIN = "<!-- bench:begin (written by python -m bench; edit outside these markers) -->"
END = "<!-- bench:end -->"


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
    lines += [
        "",
        f"### Cold start ({cold['rate_per_s']}/s over {cold['keys']} keys, check processes restarted at "
        f"{cold['restart_at_s']} s)",
        "",
        "| restart | restart to ready s | recovered after s | unanswered | errors | p99 ms per second of the run |",
        "|---|---|---|---|---|---|",
    ]
    for run in (cold, cold.get("rolling")):
        if run is not None:
            windows = ", ".join(f"{w['p99_ms']}" for w in run["load"]["windows"])
            how = {"restart": "stop and start", "reload": "rolling (make reload)"}[run.get("how", "restart")]
            lines.append(
                f"| {how} | {run['restart_to_ready_s']} | {run['recovered_after_s']} | {run['unanswered']} "
                f"| {run['errors']} | {windows} |"
            )
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
    ]
    lines += [*_detection_lines(f), "", END]  # inside the markers: a rewrite replaces it, never appends a copy
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
