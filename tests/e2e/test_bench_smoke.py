"""The benchmark harness runs end to end in a few seconds per part (``--mode smoke``, about two minutes in all, most
of it starting the make up stack twice) and reports every figure.

The figures of a smoke run mean nothing (seconds of load on a shared machine); what is checked is that each part
ran against the real services and that the summary has the shape docs/benchmarks.md and ``make bench`` rely on.
OPA is used only when already built (``--opa cached``): building it takes minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import workload
from bench.targets import FIGURES
from tests.ingress.check.test_check import GUIDE_RULES, GUIDE_STEP4
from tests.support.services import Endpoints


def test_the_bench_sends_the_guides_request_under_the_guides_policy() -> None:
    assert workload.GUIDE_STEP4 == GUIDE_STEP4
    assert workload.GUIDE_RULES == GUIDE_RULES


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_smoke_run_reports_every_figure(endpoints: Endpoints, project_root: Path, tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (`make tools` installs it)")
    summary_path = tmp_path / "summary.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "KAFKA_", "CLICKHOUSE_"))}
    env.update(
        {
            "DATABASE_URL": endpoints.database_url,
            "REDIS_URL": endpoints.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
        }
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--mode",
            "smoke",
            "--opa",
            "cached",
            "--json",
            str(summary_path),
            "--markdown",
            str(tmp_path / "benchmarks.md"),
            "--plot",
            str(tmp_path / "benchmarks.png"),
        ],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout)
    assert summary == json.loads(summary_path.read_text())
    assert summary["mode"] == "smoke"
    for field in ("cores", "cpu_model", "python", "kafka", "clickhouse"):
        assert summary["machine"][field], field
    assert set(FIGURES) <= set(summary["figures"])
    assert set(summary["targets"]) == set(FIGURES)
    for name, target in summary["targets"].items():
        assert {"value", "target", "met"} <= set(target), name

    figures = summary["figures"]
    # Measured on the make up topology: every process of it ran, and each part produced its figure.
    assert set(figures["cpu_per_decision"]["processes"]) >= {"ingress", "ingress-audit", "consumers", "workers"}
    assert figures["r1_throughput"]["errors"] == 0
    assert figures["r1_throughput"]["check_req_per_s"] > 0 < figures["r1_throughput"]["bare_req_per_s"]
    assert figures["slo_rate"]["check"]["trials"]
    assert figures["slo_rate"]["bare"]["trials"]
    assert figures["overhead"]["check"]["answered"] > 0 < figures["overhead"]["bare"]["answered"]
    assert figures["overhead"]["raw_produce"]["acked"] > 0
    assert figures["cpu_per_decision"]["check_ms"] > 0 < figures["cpu_per_decision"]["bare_ms"]
    assert figures["cold_start"]["unanswered"] == 0
    assert figures["cold_start"]["load"]["answered"] > 0
    assert figures["cold_start"]["rolling"]["unanswered"] == 0  # make reload: the socket stays open
    assert figures["cold_start"]["rolling"]["load"]["answered"] > 0
    assert figures["heavy_reads"]["work"]["errors"] == []
    assert figures["heavy_reads"]["work"]["backtests"] > 0 < figures["heavy_reads"]["work"]["exports"]
    assert figures["policy_scaling"]["paths_agree"] is True
    assert set(figures["policy_scaling"]["distinct_rules"]["us_per_decision"]) == {"1", "10", "100", "1000"}
    assert figures["r2_engine"]["engine_us_per_decision"] > 0
    assert "opa_us_per_decision" in figures["r2_engine"] or "skipped" in figures["r2_engine"]["opa"]
    assert figures["r4_writer"]["writer_rows_per_s"] > 0 < figures["r4_writer"]["raw_insert_rows_per_s"]
    assert figures["end_to_end"]["samples"] > 0
    assert figures["end_to_end"]["never_visible"] == 0
    assert figures["publish_outcomes"]["failed"] == 0

    markdown = (tmp_path / "benchmarks.md").read_text()
    assert "<!-- bench:begin" in markdown
    assert "R1 throughput" in markdown
    assert "Cold start" in markdown
