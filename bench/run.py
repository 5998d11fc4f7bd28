"""One benchmark run: the engine and OPA in process, the audit writer against a raw insert, then the server under
wrk and the constant-rate client. Returns the summary every report is made from."""

from __future__ import annotations

import asyncio
import contextlib
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import detection, engine, opa
from bench.adversarial import worst_case_body
from bench.e2e import visibility_delays
from bench.environment import BENCH_STATE, BenchEnvironment, BenchServer, Services, Tenant, cpu_count
from bench.loadgen import LoadSpec, constant_rate
from bench.machine import describe_machine
from bench.plan import Plan
from bench.server import AUTH_PATH, CONSTANT_PATH
from bench.timing import ratio
from bench.workload import GUIDE_RULES, GUIDE_STEP4
from bench.writer import writer_vs_raw
from bench.wrk import run_wrk, write_script

ATTACKER_RATE = 10.0  # worst-case bodies per second from the noisy neighbour (600 a minute)
FLUSH_INTERVAL_S = 1.0  # the audit writer's default (AUDIT_FLUSH_INTERVAL_S), set explicitly on the server
BATCH_SIZE = 500  # the audit writer's default (AUDIT_BATCH_SIZE)


def say(message: str) -> None:
    sys.stderr.write(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}\n")
    sys.stderr.flush()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        found = re.match(r"([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", line)
        if found is None or found.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', found.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(found.group(3))
    return total


class RssSampler:
    """The server's resident memory once a second from the start of the load."""

    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self.samples: list[tuple[float, float]] = []
        self.started = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.started = time.monotonic()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError, RuntimeError):
                self.samples.append((round(time.monotonic() - self.started, 1), round(self.server.rss_mib(), 1)))
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def at(self, seconds: float) -> float:
        return min(self.samples, key=lambda s: abs(s[0] - seconds))[1]

    def settled(self, seconds: float) -> float:
        """The median over the half minute up to ``seconds`` (a quarter of it, if shorter): the embedded
        ClickHouse moves RSS by tens of MiB from one second to the next as it inserts and merges."""
        window = min(30.0, seconds / 4)
        values = [rss for at, rss in self.samples if seconds - window <= at <= seconds + 1]
        return statistics.median(values) if values else self.at(seconds)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Run:
    def __init__(self, plan: Plan, *, opa_mode: str, server_cpu: int | None, load_cpu: int | None) -> None:
        self.plan = plan
        self.opa_mode = opa_mode
        two = cpu_count() >= 2
        self.server_cpu = server_cpu if two else None
        self.load_cpu = load_cpu if two else None
        self.env = BenchEnvironment(Services.from_environment())
        self.figures: dict[str, Any] = {}
        self._attacker = Tenant("", [])

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
            await self._server()
        finally:
            with contextlib.suppress(Exception):
                await self.env.drop_database()
            with contextlib.suppress(Exception):
                await self.env.delete_topics((self._writer_topic, f"{self._writer_topic}.dlq"))
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

    async def _latency(
        self, server: BenchServer, http: httpx.AsyncClient, keys: list[str], body: str, rate: float
    ) -> dict[str, Any]:
        latency: dict[str, Any] = {"rate_per_s": rate}
        for name, path in (("check", "/v1/check"), ("bare", CONSTANT_PATH)):
            await self._drain(http)
            say(f"latency at {rate}/s: {name}")
            latency[name] = await constant_rate(
                LoadSpec(server.url, path, body, keys, rate, self.plan.latency_s), cpu=self.load_cpu
            )
        latency["p99_ratio"] = ratio(latency["check"]["p99_ms"], latency["bare"]["p99_ms"])
        return latency

    async def _noisy_neighbour(self, server: BenchServer, keys: list[str], body: str, rate: float) -> dict[str, Any]:
        """The victims' p99 at ``rate`` alone, then while one more tenant sends worst-case 1 MiB bodies at
        ATTACKER_RATE, side by side in one run."""
        seconds = self.plan.latency_s
        say(f"noisy neighbour: victims at {rate}/s alone, then beside worst-case bodies at {ATTACKER_RATE}/s")
        alone = await constant_rate(LoadSpec(server.url, "/v1/check", body, keys, rate, seconds), cpu=self.load_cpu)
        attack = LoadSpec(
            server.url,
            "/v1/check",
            orjson.dumps(worst_case_body()).decode(),
            self._attacker.keys,
            ATTACKER_RATE,
            seconds,
        )
        attacked, attacker = await asyncio.gather(
            constant_rate(LoadSpec(server.url, "/v1/check", body, keys, rate, seconds), cpu=self.load_cpu),
            constant_rate(attack, cpu=self.load_cpu),
        )
        return {
            "rate_per_s": rate,
            "attacker_rate_per_s": ATTACKER_RATE,
            "alone": alone,
            "attacked": attacked,
            "attacker": attacker,
            "p99_ratio": ratio(attacked["p99_ms"], alone["p99_ms"]),
        }

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

    # -- the server ---------------------------------------------------------------------------------------------

    async def _server(self) -> None:
        plan = self.plan
        say("server: starting")
        with self.env.server(cpu=self.server_cpu, AUDIT_FLUSH_INTERVAL_S=str(FLUSH_INTERVAL_S)) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                tenants = [
                    await self.env.create_tenant(http, f"bench-{i}", keys=plan.keys_per_customer, rules=GUIDE_RULES)
                    for i in range(plan.customers)
                ]
                probe = await self.env.create_tenant(http, "bench-e2e", keys=1, rules=GUIDE_RULES)
                self._attacker = await self.env.create_tenant(http, "bench-attacker", keys=1, rules=GUIDE_RULES)
                await self._load_phases(server, http, tenants, probe)

    async def _load_phases(
        self, server: BenchServer, http: httpx.AsyncClient, tenants: list[Tenant], probe: Tenant
    ) -> None:
        plan = self.plan
        keys = [key for tenant in tenants for key in tenant.keys]
        body = orjson.dumps(GUIDE_STEP4)
        scripts = {
            "check": write_script(self.env.state, "check", path="/v1/check", body=body, keys=keys),
            "bare": write_script(self.env.state, "bare", path=CONSTANT_PATH, body=body, keys=keys),
        }
        sampler = RssSampler(server)
        sampler.start()
        try:
            say("warm-up")
            await self._wrk(server, scripts["check"], plan.warmup_s)
            await self._wrk(server, scripts["bare"], plan.warmup_s)
            probed = await http.post(
                "/v1/check", json=GUIDE_STEP4, headers={"Authorization": f"Bearer {probe.keys[0]}"}
            )
            probed.raise_for_status()
            before = (await http.get("/metrics")).text
            auth_before = (await http.get(AUTH_PATH)).json()

            await self._drain(http)
            rounds: dict[str, list[dict[str, Any]]] = {"check": [], "bare": []}
            for index in range(plan.r1_rounds):
                order = ("bare", "check") if index % 2 == 0 else ("check", "bare")
                for name in order:
                    say(f"R1 round {index + 1}/{plan.r1_rounds}: {name}")
                    result = (await self._wrk(server, scripts[name], plan.r1_s)).as_dict()
                    # Sustained: the audit writer in the server must keep up. The time it then needs to write
                    # what the run published, beyond one flush interval, counts as time of the run.
                    result["drain_s"] = round(await self._drain(http), 2)
                    extra = max(0.0, result["drain_s"] - FLUSH_INTERVAL_S)
                    result["sustained_req_per_s"] = round(result["requests"] / (result["seconds"] + extra), 1)
                    rounds[name].append(result)
            check_rate = statistics.median(r["sustained_req_per_s"] for r in rounds["check"])
            bare_rate = statistics.median(r["sustained_req_per_s"] for r in rounds["bare"])
            self.figures["r1_throughput"] = {
                "check_req_per_s": check_rate,
                "bare_req_per_s": bare_rate,
                "ratio": ratio(check_rate, bare_rate),
                "errors": sum(r["errors"] for runs in rounds.values() for r in runs),
                "connections": plan.wrk_connections,
                "rounds": rounds,
            }

            rate = round(check_rate * 0.5, 1)
            self.figures["latency"] = await self._latency(server, http, keys, body.decode(), rate)
            await self._drain(http)
            self.figures["noisy_neighbour"] = await self._noisy_neighbour(server, keys, body.decode(), rate)

            await self._drain(http)
            soak_s = max(plan.memory_total_s - sampler.elapsed(), plan.e2e_s + 1)
            say(f"soak at {rate}/s for {soak_s:.0f} s, with end-to-end probes")
            soak, e2e = await asyncio.gather(
                constant_rate(LoadSpec(server.url, "/v1/check", body.decode(), keys, rate, soak_s), cpu=self.load_cpu),
                visibility_delays(http, probe.keys[0], GUIDE_STEP4, seconds=plan.e2e_s, per_s=plan.e2e_per_s),
            )
            after = (await http.get("/metrics")).text
            auth_after = (await http.get(AUTH_PATH)).json()
        finally:
            await sampler.stop()
        self.figures["end_to_end"] = {**e2e, "flush_interval_s": FLUSH_INTERVAL_S, "under_load_per_s": rate}
        self.figures["soak"] = soak
        self._auth(before, after, auth_before, auth_after, len(keys) + 1)
        last_s = sampler.samples[-1][0]
        first, last = sampler.settled(plan.memory_first_s), sampler.settled(last_s)
        self.figures["memory"] = {
            "mode": plan.describe_memory(),
            "rss_first_mib": first,
            "rss_last_mib": last,
            "last_sample_s": last_s,
            "ratio": ratio(last, first),
            "single_samples_ratio": ratio(sampler.samples[-1][1], sampler.at(plan.memory_first_s)),
            "samples": sampler.samples,
        }
        outcomes = {
            o: metric(after, "governance_decision_publish_total", outcome=o) for o in ("kafka", "spool", "failed")
        }
        self.figures["publish_outcomes"] = outcomes

    async def _drain(self, http: httpx.AsyncClient, timeout_s: float = 180.0) -> float:
        """Wait until the server's audit writer has written every decision published so far; the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            text = (await http.get("/metrics")).text
            published = sum(metric(text, "governance_decision_publish_total", outcome=o) for o in ("kafka", "spool"))
            if metric(text, "governance_audit_rows_written_total") >= published:
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the audit writer did not catch up within {timeout_s:.0f} s")

    async def _wrk(self, server: BenchServer, script: Path, seconds: float) -> Any:
        run: Callable[[], Any] = lambda: run_wrk(  # noqa: E731 - one call, run off the event loop
            server.url, script, seconds=seconds, connections=self.plan.wrk_connections, cpu=self.load_cpu
        )
        return await asyncio.to_thread(run)

    def _auth(
        self, before: str, after: str, auth_before: dict[str, int], auth_after: dict[str, int], keys: int
    ) -> None:
        def delta(name: str) -> int:
            return auth_after[name] - auth_before[name]

        hits, misses, bcrypt = delta("cache_hits"), delta("cache_misses"), delta("bcrypt_calls")
        checks = metric(after, "governance_checks_total") - metric(before, "governance_checks_total")
        self.figures["auth"] = {
            "keys": keys,
            "checks": int(checks),
            "cache_hit_rate": round(hits / (hits + misses), 5) if hits + misses else None,
            "misses": misses,
            "record_reloads": delta("record_reloads"),
            "bcrypt_calls": bcrypt,
            "bcrypt_calls_per_10k_checks": round(bcrypt / checks * 10_000, 3) if checks else None,
            "bcrypt_calls_whole_run": auth_after["bcrypt_calls"],
            "window": "after the warm-up to the end of the soak",
        }
