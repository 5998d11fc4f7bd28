"""One benchmark run: the engine and OPA in process, the audit writer against a raw insert, then the stack ``make
up`` runs (``bench.stack``) under wrk and the constant-rate client, beside bare FastAPI and a raw Kafka producer.
Returns the summary every report is made from."""

from __future__ import annotations

import contextlib
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import detection, engine, opa
from bench.environment import BENCH_STATE, BenchEnvironment, Services, cpu_count
from bench.machine import describe_machine
from bench.plan import Plan
from bench.stack import Stack, bare_server
from bench.stack_run import StackRun, started
from bench.timing import ratio
from bench.writer import writer_vs_raw

BATCH_SIZE = 500  # the audit writer's default (AUDIT_BATCH_SIZE)


def say(message: str) -> None:
    sys.stderr.write(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}\n")
    sys.stderr.flush()


class Run:
    def __init__(self, plan: Plan, *, opa_mode: str, server_cpu: int | None, load_cpu: int | None) -> None:
        self.plan = plan
        self.opa_mode = opa_mode
        two = cpu_count() >= 2
        self.server_cpu = server_cpu if two else None
        self.load_cpu = load_cpu if two else None
        self.env = BenchEnvironment(Services.from_environment())
        self.figures: dict[str, Any] = {}

    async def execute(self) -> dict[str, Any]:
        started = time.monotonic()
        summary: dict[str, Any] = {
            "mode": self.plan.mode,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": describe_machine(),
            "pinning": {"server_cpu": self.server_cpu, "load_cpu": self.load_cpu},
        }
        self.env.state.mkdir(parents=True, exist_ok=True)
        try:
            self._engine()
            self._detection()
            self._opa(summary)
            await self._writer()
            await self.env.create_database()
            await self._stack()
        finally:
            with contextlib.suppress(Exception):
                await self.env.drop_database()
            with contextlib.suppress(Exception):
                extra = (self._writer_topic, f"{self._writer_topic}.dlq", self.env.topic("raw.v1"))
                await self.env.delete_topics(extra)
            self.env.remove_state()
        summary["figures"] = self.figures
        summary["duration_s"] = round(time.monotonic() - started, 1)
        return summary

    # -- in process ---------------------------------------------------------------------------------------------

    def _engine(self) -> None:
        seconds = self.plan.engine_s
        say("engine: per decision, policy scaling, context scaling")
        self.figures["r2_engine"] = {"engine_us_per_decision": round(engine.decision_us(seconds), 1)}
        self.figures["policy_scaling"] = engine.policy_scaling(seconds * 2)
        self.figures["context_scaling"] = engine.context_scaling(seconds, self.plan.context_sizes_kib)

    def _detection(self) -> None:
        say("personal-data detection: worst-case shapes, then quality and speed against Presidio")
        self.figures["detection_cost"] = detection.cost(attempts=5 if self.plan.mode == "full" else 1)
        minimum_s = self.plan.engine_s / 4
        quality = detection.quality(BENCH_STATE / "presidio", self.opa_mode, minimum_s)
        self.figures["detection_quality"] = quality
        self.figures["detection_speed"] = detection.speed(quality)

    def _opa(self, summary: dict[str, Any]) -> None:
        figure = self.figures["r2_engine"]
        cache = BENCH_STATE / "bin"
        if self.opa_mode == "skip":
            figure["opa"] = "skipped (--opa skip)"
            return
        say("OPA: build when missing (minutes, once), then opa bench")
        try:
            binary = opa.opa_binary(cache, build=self.opa_mode == "build")
        except opa.OpaUnavailable as exc:
            figure["opa"] = f"skipped: {exc}"
            return
        if binary is None:
            figure["opa"] = f"skipped: opa {opa.OPA_VERSION} is not cached in {cache} (--opa build builds it)"
            return
        result = opa.opa_decision_us(binary, self.env.state / "opa", count=self.plan.opa_runs)
        summary["machine"]["opa"] = opa.opa_version(binary)
        figure["opa_us_per_decision"] = result["us_per_decision"]
        figure["opa_decides_as_engine"] = result["decides_as_engine"]
        figure["ratio"] = ratio(figure["engine_us_per_decision"], result["us_per_decision"])

    @property
    def _writer_topic(self) -> str:
        return self.env.topic("writer.v1")

    async def _writer(self) -> None:
        say(f"audit writer vs raw insert: {self.plan.writer_rows} rows")
        self.figures["r4_writer"] = await writer_vs_raw(
            bootstrap=self.env.services.kafka_bootstrap_servers,
            topic=self._writer_topic,
            group_id=f"bench-writer-{self.env.run_id}",
            state=self.env.state,
            count=self.plan.writer_rows,
            batch_size=BATCH_SIZE,
        )

    # -- the make up topology ---------------------------------------------------------------------------------

    async def _stack(self) -> None:
        cpus = str(self.server_cpu) if self.server_cpu is not None else None
        stack = Stack(self.env, cpus)
        say("stack: starting every process as make up starts them")
        async with started(stack):
            with bare_server(self.env, cpus) as bare:
                phases = StackRun(self.plan, self.env, stack, bare, load_cpu=self.load_cpu, say=say)
                try:
                    await phases.tenants()
                    await phases.r1()
                    await phases.slo()
                    await phases.overhead()
                    await phases.pipeline()
                    await phases.heavy()
                    await phases.cold_start()
                    self.figures["publish_outcomes"] = await phases._published()
                finally:
                    self.figures.update(phases.figures)
                    await phases.close()
