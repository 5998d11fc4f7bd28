"""The figures measured on the ``make up`` topology (``bench.stack``): R1, the SLO rate, the overhead at half of
it beside bare FastAPI and a raw Kafka producer, CPU per decision from /proc, the pipeline, the check beside an
export and a backtest (issue 14), and the cold start after restarting the check processes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import orjson

from bench.e2e import visibility_delays
from bench.environment import BenchEnvironment
from bench.heavy import analyst_work, produce, stored_events
from bench.loadgen import LoadSpec, constant_rate
from bench.plan import Plan
from bench.rawkafka import ProduceSpec, raw_produce
from bench.stack import BareServer, Stack, cpu_seconds, cpu_used
from bench.tenants import Customer, create_customers
from bench.timing import percentile, ratio
from bench.workload import GUIDE_RULES, GUIDE_STEP4, GUIDE_STEP4_PERSONAL, PERSONAL_SHARE
from bench.wrk import run_wrk, write_script

SLO_P99_MS = 10.0
FLUSH_INTERVAL_S = 1.0  # the audit writer's default (AUDIT_FLUSH_INTERVAL_S)
COLD_RATE = 200.0
HEAVY_RATE = 200.0


def metric(text: str, name: str, **labels: str) -> float:
    import re

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


class StackRun:
    def __init__(
        self, plan: Plan, env: BenchEnvironment, stack: Stack, bare: BareServer, *, load_cpu: int | None, say: Any
    ) -> None:
        self.plan = plan
        self.env = env
        self.stack = stack
        self.bare = bare
        self.load_cpu = load_cpu
        self.server_cpu = int(stack.ingress_cpus) if stack.ingress_cpus else None
        self.say = say
        self.figures: dict[str, Any] = {}
        self.customers: list[Customer] = []
        self.keys: list[str] = []
        self.http = httpx.AsyncClient(base_url=stack.url, timeout=60)
        self.read_side = httpx.AsyncClient(base_url=stack.read_side_url, timeout=30)

    async def close(self) -> None:
        await self.http.aclose()
        await self.read_side.aclose()

    # -- helpers ------------------------------------------------------------------------------------------------

    def _spec(self, url: str, path: str, rate: float, seconds: float, **extra: Any) -> LoadSpec:
        return LoadSpec(
            url,
            path,
            orjson.dumps(GUIDE_STEP4).decode(),
            self.keys,
            rate,
            seconds,
            other_bodies=(orjson.dumps(GUIDE_STEP4_PERSONAL).decode(),),
            other_share=PERSONAL_SHARE,
            random_keys=True,
            **extra,
        )

    async def _published(self) -> dict[str, float]:
        text = (await self.http.get("/metrics")).text
        return {o: metric(text, "governance_decision_publish_total", outcome=o) for o in ("kafka", "spool", "failed")}

    async def settle(self, timeout_s: float = 120.0) -> float:
        """Wait until the audit writer (in the read side) has written every decision published so far."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            published = await self._published()
            written = metric((await self.read_side.get("/metrics")).text, "governance_audit_rows_written_total")
            if written >= published["kafka"] + published["spool"] + self._extra_rows:
                return time.monotonic() - started
            await asyncio.sleep(0.2)
        self.say("the audit writer did not catch up; going on")
        return time.monotonic() - started

    _extra_rows = 0  # rows stored without a check (the heavy figure's events)

    async def check(self, rate: float, seconds: float, **extra: Any) -> dict[str, Any]:
        """One constant-rate run of /v1/check, with the decisions spooled during it and the CPU of every process."""
        before, cpu_before = await self._published(), self.stack.cpu_by_process()
        result = await constant_rate(self._spec(self.stack.url, "/v1/check", rate, seconds, **extra), cpu=self.load_cpu)
        after, cpu_after = await self._published(), self.stack.cpu_by_process()
        result["spooled"] = after["spool"] - before["spool"]
        result["publish_failed"] = after["failed"] - before["failed"]
        by_process = {name: cpu_used(cpu_before.get(name, {}), used) for name, used in cpu_after.items()}
        result["cpu_s"] = round(sum(by_process.values()), 3)
        answered = max(1, result["answered"])
        result["cpu_ms_per_request_by_process"] = {n: round(v * 1000 / answered, 3) for n, v in by_process.items()}
        result["cpu_ms_per_request"] = round(result["cpu_s"] * 1000 / max(1, result["answered"]), 3)
        return result

    async def bare_run(self, rate: float, seconds: float) -> dict[str, Any]:
        cpu_before = cpu_seconds(self.bare.pids())
        result = await constant_rate(self._spec(self.bare.url, "/bare", rate, seconds), cpu=self.load_cpu)
        result["spooled"] = 0
        result["cpu_s"] = round(cpu_used(cpu_before, cpu_seconds(self.bare.pids())), 3)
        result["cpu_ms_per_request"] = round(result["cpu_s"] * 1000 / max(1, result["answered"]), 3)
        return result

    @staticmethod
    def _within_slo(result: dict[str, Any]) -> bool:
        return bool(
            result["p99_ms"] <= SLO_P99_MS
            and result["errors"] == 0
            and result["unanswered"] == 0
            and result["spooled"] == 0
        )

    # -- phases -------------------------------------------------------------------------------------------------

    async def tenants(self) -> None:
        plan = self.plan
        self.say(f"tenants: {plan.customers} customers x {plan.keys_per_customer} keys")
        self.customers = await create_customers(
            self.http,
            self.env.admin_key,
            self.env.database_url,
            customers=plan.customers + 1,  # one more: the end-to-end probes and the heavy figure's stored events
            keys_each=plan.keys_per_customer,
            rules=GUIDE_RULES,
        )
        self.keys = [key for customer in self.customers[:-1] for key in customer.keys]
        self.say("warm-up")
        await self.check(200.0, plan.warmup_s)
        await self.bare_run(200.0, plan.warmup_s)
        await self.settle()

    async def r1(self) -> None:
        plan = self.plan
        body = orjson.dumps(GUIDE_STEP4)
        scripts = {
            "check": (
                self.stack.url,
                write_script(self.env.state, "check", path="/v1/check", body=body, keys=self.keys),
            ),
            "bare": (self.bare.url, write_script(self.env.state, "bare", path="/bare", body=body, keys=self.keys)),
        }
        rounds: dict[str, list[dict[str, Any]]] = {"check": [], "bare": []}
        for index in range(plan.r1_rounds):
            for name in ("bare", "check") if index % 2 == 0 else ("check", "bare"):
                self.say(f"R1 round {index + 1}/{plan.r1_rounds}: {name}")
                url, script = scripts[name]
                result = await asyncio.to_thread(
                    run_wrk, url, script, seconds=plan.r1_s, connections=plan.wrk_connections, cpu=self.load_cpu
                )
                rounds[name].append(result.as_dict())
                await self.settle()
        check = sorted(r["req_per_s"] for r in rounds["check"])[len(rounds["check"]) // 2]
        bare = sorted(r["req_per_s"] for r in rounds["bare"])[len(rounds["bare"]) // 2]
        self.figures["r1_throughput"] = {
            "check_req_per_s": check,
            "bare_req_per_s": bare,
            "ratio": ratio(check, bare),
            "errors": sum(r["errors"] for runs in rounds.values() for r in runs),
            "connections": plan.wrk_connections,
            "rounds": rounds,
        }

    async def _search(self, name: str, run: Any, start: float, ceiling: float) -> dict[str, Any]:
        """The highest constant rate within the SLO: up by ``slo_factor`` until a run misses, then bisect."""
        plan = self.plan
        trials: list[dict[str, Any]] = []
        good, bad = 0.0, None
        rate = start
        while bad is None and rate <= ceiling and len(trials) < plan.slo_max_trials:
            self.say(f"SLO search, {name}: {rate:.0f}/s")
            result = await run(rate, plan.slo_trial_s)
            ok = self._within_slo(result)
            trials.append(
                {
                    "rate": rate,
                    "ok": ok,
                    **{k: result[k] for k in ("p50_ms", "p99_ms", "errors", "unanswered", "spooled")},
                }
            )
            if name == "check":
                await self.settle()
            if ok:
                good = rate
                rate = round(rate * plan.slo_factor, 1)
            elif good == 0.0 and rate / 2 >= plan.slo_floor:
                rate = round(rate / 2, 1)  # missed at the start: down until a rate holds (or the floor)
            else:
                bad = rate
        for _ in range(plan.slo_refine):
            if bad is None or good == 0.0:
                break
            rate = round((good + bad) / 2, 1)
            self.say(f"SLO search, {name}: {rate:.0f}/s (refining)")
            result = await run(rate, plan.slo_trial_s)
            ok = self._within_slo(result)
            trials.append(
                {
                    "rate": rate,
                    "ok": ok,
                    **{k: result[k] for k in ("p50_ms", "p99_ms", "errors", "unanswered", "spooled")},
                }
            )
            if name == "check":
                await self.settle()
            good, bad = (rate, bad) if ok else (good, rate)
        return {"rate_per_s": good, "first_miss_per_s": bad, "trials": trials}

    async def slo(self) -> None:
        check = await self._search("check", self.check, self.plan.slo_start_check, 4000)
        bare = await self._search("bare", self.bare_run, self.plan.slo_start_bare, 6000)
        self.figures["slo_rate"] = {
            "p99_target_ms": SLO_P99_MS,
            "check": check,
            "bare": bare,
            "ratio": ratio(check["rate_per_s"], bare["rate_per_s"]),
        }

    async def overhead(self) -> None:
        """At half the check's SLO rate: check, bare and raw produce, one after the other; CPU per request."""
        plan = self.plan
        rate = max(10.0, round(self.figures["slo_rate"]["check"]["rate_per_s"] / 2, 1))
        self.say(f"overhead at {rate}/s: check, bare, raw Kafka producer")
        check = await self.check(rate, plan.latency_s)
        await self.settle()
        bare = await self.bare_run(rate, plan.latency_s)
        size = len(stored_events(1, self.customers[-1].customer_id, self.env.state / "receipt-keys")[0])
        raw = await raw_produce(
            ProduceSpec(
                self.env.services.kafka_bootstrap_servers, self.env.topic("raw.v1"), size, rate, plan.latency_s
            ),
            cpu=self.server_cpu,
        )
        overhead = round(check["p99_ms"] - bare["p99_ms"] - raw["p99_ms"], 3)
        self.figures["overhead"] = {
            "rate_per_s": rate,
            "check": check,
            "bare": bare,
            "raw_produce": raw,
            "ms": overhead,
        }
        self.figures["cpu_per_decision"] = {
            "rate_per_s": rate,
            "check_ms": check["cpu_ms_per_request"],
            "bare_ms": bare["cpu_ms_per_request"],
            "ratio": ratio(check["cpu_ms_per_request"], bare["cpu_ms_per_request"]),
            "processes": sorted(self.stack.roots()),
        }

    async def pipeline(self) -> None:
        plan = self.plan
        rate = self.figures["overhead"]["rate_per_s"]
        self.say(f"pipeline: answered -> queryable, under {rate}/s")
        await self.settle()
        probe = self.customers[-1]
        e2e: dict[str, Any]
        _, e2e = await asyncio.gather(
            self.check(rate, plan.e2e_s + 2),
            visibility_delays(self.http, probe.keys[0], GUIDE_STEP4, seconds=plan.e2e_s, per_s=plan.e2e_per_s),
        )
        self.figures["end_to_end"] = {**e2e, "flush_interval_s": FLUSH_INTERVAL_S, "under_load_per_s": rate}

    async def heavy(self) -> None:
        plan = self.plan
        owner = self.customers[-1]
        self.say(f"heavy: storing {plan.heavy_events} decisions for the export and the backtest")
        values = await asyncio.to_thread(
            stored_events, plan.heavy_events, owner.customer_id, self.env.state / "receipt-keys"
        )
        await produce(
            self.env.services.kafka_bootstrap_servers, self.env.topics["DECISIONS_TOPIC"], owner.customer_id, values
        )
        del values
        self._extra_rows += plan.heavy_events
        await self.settle(timeout_s=300)
        self.say(f"heavy: check at {HEAVY_RATE}/s alone, then beside a full export and a backtest")
        alone = await self.check(HEAVY_RATE, plan.heavy_s)
        await self.settle()
        until = time.monotonic() + plan.heavy_s + 1
        beside, work = await asyncio.gather(
            self.check(HEAVY_RATE, plan.heavy_s),
            analyst_work(self.http, self.env.admin_key, owner.policy_id, plan.heavy_events, until),
        )
        self.figures["heavy_reads"] = {
            "rate_per_s": HEAVY_RATE,
            "stored_events": plan.heavy_events,
            "alone": alone,
            "beside": beside,
            "work": work,
            "p99_ratio": ratio(beside["p99_ms"], alone["p99_ms"]),
        }

    async def cold_start(self) -> None:
        """The check processes restarted under load twice: stopped and started (``apps.py restart ingress``), and
        rolled (``make reload``: each worker replaced once its replacement serves, the socket kept open)."""
        full = await self._restarted("restart")
        rolling = await self._restarted("reload")
        self.figures["cold_start"] = {**full, "rolling": rolling}

    async def _restarted(self, how: str) -> dict[str, Any]:
        plan = self.plan
        await self.settle()
        self.say(f"cold start: {COLD_RATE}/s over {len(self.keys)} keys, the check processes restarted ({how})")
        begin = time.time() + 3.0  # the load client's own start-up first
        spec = self._spec(
            self.stack.url, "/v1/check", COLD_RATE, plan.cold_s, retry_refused=True, timeline=True, start_at_epoch=begin
        )
        load = asyncio.create_task(constant_rate(spec, cpu=self.load_cpu))
        await asyncio.sleep(max(0.0, begin + plan.cold_restart_at_s - time.time()))
        restarted_at = time.time()
        await (self.stack.restart("ingress") if how == "restart" else self.stack.reload("ingress"))
        ready_at = time.time()
        result = await load
        timeline = result.pop("timeline")
        offset = restarted_at - result["started_epoch"]
        windows: list[dict[str, Any]] = []
        for second in range(int(plan.cold_s)):
            latencies = sorted(ms for at, ms, _ in timeline if second <= at < second + 1)
            windows.append({"s": second, "n": len(latencies), "p99_ms": round(percentile(latencies, 0.99), 3)})
        recovered = None
        after = [w for w in windows if w["s"] >= int(offset)]
        run = plan.cold_good_windows
        for index in range(len(after) - run + 1):
            if all(w["n"] and w["p99_ms"] <= SLO_P99_MS for w in after[index : index + run]):
                recovered = round(after[index]["s"] - offset, 1)
                break
        result["windows"] = windows
        return {
            "how": how,
            "rate_per_s": COLD_RATE,
            "keys": len(self.keys),
            "restart_at_s": round(offset, 2),
            "restart_to_ready_s": round(ready_at - restarted_at, 2),
            "recovered_after_s": max(0.0, recovered) if recovered is not None else None,
            "unanswered": result["unanswered"],
            "errors": result["errors"],
            "good_windows_needed": run,
            "load": result,
        }


@contextlib.asynccontextmanager
async def started(stack: Stack) -> Any:
    await stack.start()
    try:
        yield stack
    finally:
        with contextlib.suppress(Exception):
            await stack.stop()
