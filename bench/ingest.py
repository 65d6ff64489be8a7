"""Ingestion over HTTP: a real `tally api` process vs a bare msgspec-parse + XADD endpoint, same generator.

Three figures, each next to the same measurement of the ceiling app (bench.ingest_ceiling_app):
- single-event capacity: POST /v1/events, closed loop, CAPACITY_CONNECTIONS keep-alive connections back to back;
- single-event rate at bounded latency: open-loop steps, the same offered rates for both (fractions of the
  ceiling's closed-loop capacity), up to the first step that misses; the figure is the highest achieved rate whose
  step kept p99 <= P99_BOUND_MS with no error and >= 95 % of the offered rate;
- bulk: POST /v1/events/bulk with 1,000 events per request, closed loop, BULK_CONNECTIONS connections; events/s.
Every event has its own event_id, so every one goes through tally's dedup check; the feeds are counted afterwards
to confirm each sent event was appended exactly once.
"""

import json
import subprocess
import sys
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bench import workload
from bench.fold import PARTITIONS
from bench.machine import OTHER_LOAD, REDIS_CPU, CpuMeter, own_redis, pin
from bench.reads import API_KEY, server, tally_argv, tally_env
from bench.report import Row, ms, rate, ratio, verdict
from cli.stores import free_port
from store.eventstore import EventStore
from store.keys import Keys

TARGET = 0.80  # DESIGN §5: single and bulk ingest at ≥ 80 % of their bare endpoints (decode + XADD)
P99_BOUND_MS = 50.0
CAPACITY_CONNECTIONS = 16
STEP_CONNECTIONS = 64
BULK_CONNECTIONS = 4
PER_REQUEST = 1000
PATHS = {"tally": ("/v1/events", "/v1/events/bulk"), "ceiling": ("/ceiling/events", "/ceiling/events/bulk")}


class IngestPlan:
    def __init__(self, quick: bool) -> None:
        self.customers = 1000
        self.warmup = 0.3 if quick else 0.5
        self.rounds = 1 if quick else 2  # capacity and bulk: alternating runs, each target's best one counts
        self.capacity_seconds = 1.5 if quick else 2.5
        self.steps = (0.3, 0.6) if quick else (0.2, 0.35, 0.5, 0.65, 0.8, 0.95)
        self.step_seconds = 1.5 if quick else 2.0
        self.bulk_seconds = 2.0 if quick else 3.0


class Target:
    def __init__(self, name: str, port: int, pid: int) -> None:
        self.name, self.port, self.pid = name, port, pid
        self.runs = 0


async def feed_entries(url: str) -> int:
    """Entries ever added to the partition feeds (each appended event adds exactly one)."""
    redis, keys, total = Redis.from_url(url), Keys(PARTITIONS), 0
    try:
        for p in range(PARTITIONS):
            try:
                info: Any = await redis.xinfo_stream(keys.feed(p))
            except ResponseError:
                continue
            total += int(info.get("entries-added") or info.get(b"entries-added") or 0)
    finally:
        await redis.aclose()
    return total


async def prepare(url: str, customers: int) -> None:
    """The rate card (so each usage append attaches it, as in production) and a wallet per customer."""
    redis = Redis.from_url(url)
    try:
        await workload.create_wallets(EventStore(redis, Keys(PARTITIONS), 35 * 24 * 3600), customers)
    finally:
        await redis.aclose()


async def generate(target: Target, redis_pid: int, url: str, bulk: bool, options: list[str],
                   seconds: float) -> dict[str, Any]:
    """One load-generator run (its own process, pinned with Redis); tally runs are checked against the feeds."""
    target.runs += 1
    argv = [sys.executable, "-m", "bench.ingest_loadgen", "--port", str(target.port),
            "--path", PATHS[target.name][1 if bulk else 0], "--header", f"x-api-key: {API_KEY}",
            "--tag", f"{target.name}{target.runs}{'b' if bulk else 's'}", "--per-request", str(PER_REQUEST),
            *(["--bulk"] if bulk else []), *options]
    before = await feed_entries(url) if target.name == "tally" else 0
    process = subprocess.Popen(argv, stdout=subprocess.PIPE)
    pin(process.pid, REDIS_CPU)
    meter = CpuMeter(server=target.pid, redis=redis_pid)
    meter.start()
    out, _ = process.communicate(timeout=seconds + 60)
    if process.returncode != 0:
        raise RuntimeError(f"ingest load generator failed with {process.returncode}")
    result: dict[str, Any] = json.loads(out)
    per_request = meter.cpu_seconds("server") / max(1, result["all_requests"]) * 1000
    result["server_ms_per_request"] = per_request
    generator = result["generator_cpu_s"] / (time.perf_counter() - meter.wall) * 100
    used = meter.stop()
    # The generator is the bench's own process (gone by now, so the meter counted it as other load): take it out.
    OTHER_LOAD[-1] = max(0.0, OTHER_LOAD[-1] - generator)
    result["cpu"] = (f"{used} with the generator's {generator:.0f} % in it, so {OTHER_LOAD[-1]:.0f} % net; server "
                     f"CPU per request {per_request:.2f} ms")
    if target.name == "tally":
        added = await feed_entries(url) - before
        result["check"] = (f"feeds +{added:,} for {result['events_sent']:,} events sent"
                           + ("" if added == result["events_sent"] else " (MISMATCH)"))
    return result


def best(runs: list[dict[str, Any]], figure: str) -> dict[str, Any]:
    """The run with the highest `figure`, noting every run's figure (the same rule for tally and the ceiling)."""
    chosen = max(runs, key=lambda r: float(r[figure]))
    chosen["runs"] = ", ".join(f"{r[figure]:,.0f}" for r in runs)
    return chosen


async def capacity(target: Target, redis_pid: int, url: str, plan: IngestPlan) -> dict[str, Any]:
    options = ["--closed", "--connections", str(CAPACITY_CONNECTIONS), "--warmup", str(plan.warmup),
               "--duration", str(plan.capacity_seconds), "--customers", str(plan.customers)]
    return await generate(target, redis_pid, url, False, options, plan.warmup + plan.capacity_seconds)


def sustained(step: dict[str, Any]) -> bool:
    return bool(step["errors"] == 0 and step["p99_ms"] <= P99_BOUND_MS
                and step["achieved_rps"] >= 0.95 * step["offered_rps"])


async def steps(target: Target, redis_pid: int, url: str, plan: IngestPlan, top: float) -> list[dict[str, Any]]:
    """Open-loop steps at fractions of `top` (the ceiling's closed-loop capacity); stop after the first failed step."""
    done: list[dict[str, Any]] = []
    for fraction in plan.steps:
        options = ["--rate", f"{top * fraction:.0f}", "--connections", str(STEP_CONNECTIONS),
                   "--warmup", str(plan.warmup), "--duration", str(plan.step_seconds),
                   "--customers", str(plan.customers)]
        done.append(await generate(target, redis_pid, url, False, options, plan.warmup + plan.step_seconds))
        if not sustained(done[-1]):
            break
    return done


async def bulk(target: Target, redis_pid: int, url: str, plan: IngestPlan) -> dict[str, Any]:
    options = ["--closed", "--connections", str(BULK_CONNECTIONS), "--warmup", str(plan.warmup),
               "--duration", str(plan.bulk_seconds), "--customers", str(plan.customers)]
    return await generate(target, redis_pid, url, True, options, plan.warmup + plan.bulk_seconds)


def best_sustained(runs: list[dict[str, Any]]) -> float:
    return max((r["achieved_rps"] for r in runs if sustained(r)), default=0.0)


def held_verdict(held: float, held_c: float) -> str:
    """Tally's best held step against the ceiling's; no verdict when the ceiling held none (nothing to judge by:
    the machine missed the bound at every step, the bare endpoint too)."""
    return verdict(held >= TARGET * held_c if held_c > 0 else None)


def describe_steps(runs: list[dict[str, Any]]) -> str:
    def one(r: dict[str, Any]) -> str:
        errors = f", {r['errors']} errors" if r["errors"] else ""
        return f"{r['offered_rps']:,.0f} offered -> {r['achieved_rps']:,.0f} achieved, p99 {ms(r['p99_ms'])}{errors}"

    return "; ".join(one(r) for r in runs)


def per_core(run: dict[str, Any]) -> float:
    """Requests per second one whole core could serve at the server CPU per request measured."""
    return 1000 / run["server_ms_per_request"] if run["server_ms_per_request"] > 0 else float("nan")


def rows(got: dict[str, Any], ceiling: dict[str, Any], plan: IngestPlan) -> list[Row]:
    cap, cap_c = got["capacity"], ceiling["capacity"]
    held, held_c = best_sustained(got["steps"]), best_sustained(ceiling["steps"])
    bulk_t, bulk_c = got["bulk"], ceiling["bulk"]
    return [
        Row(name="ingest single capacity (1 worker)", value=f"{cap['achieved_rps']:,.0f} req/s",
            ceiling=f"{cap_c['achieved_rps']:,.0f} req/s parse + XADD", ratio=ratio(cap["achieved_rps"],
                                                                                  cap_c["achieved_rps"]),
            target="≥ 80 % of parse + XADD", verdict=verdict(cap["achieved_rps"] >= TARGET * cap_c["achieved_rps"]),
            note=(f"POST /v1/events, closed loop: {CAPACITY_CONNECTIONS} keep-alive connections back to back for "
                  f"{plan.capacity_seconds:g} s after {plan.warmup:g} s warm-up; one event per request, a unique "
                  f"event_id each, {plan.customers:,} customers; best of {plan.rounds} alternating runs (tally "
                  f"{cap['runs']}, ceiling {cap_c['runs']} req/s). Best runs: p50 {ms(cap['p50_ms'])}, p99 "
                  f"{ms(cap['p99_ms'])} "
                  f"(ceiling {ms(cap_c['p50_ms'])}, {ms(cap_c['p99_ms'])}); errors {cap['errors']} (ceiling "
                  f"{cap_c['errors']}). {cap['cpu']} (ceiling {cap_c['server_ms_per_request']:.2f} ms): with a "
                  f"whole core and nothing else, at most ~{per_core(cap):,.0f} req/s (ceiling "
                  f"~{per_core(cap_c):,.0f}). "
                  f"{cap['check']}.")),
        Row(name=f"ingest single @ p99 ≤ {P99_BOUND_MS:.0f} ms (1 worker)",
            value=f"{held:,.0f} req/s" if held else "none held",
            ceiling=f"{held_c:,.0f} req/s" if held_c else "none held", ratio=ratio(held, held_c),
            target="≥ 80 % of parse + XADD", verdict=held_verdict(held, held_c),
            note=(f"open loop ({STEP_CONNECTIONS} connections, latency from the scheduled instant), steps of "
                  f"{plan.step_seconds:g} s after {plan.warmup:g} s warm-up at "
                  f"{', '.join(f'{f:g}' for f in plan.steps)} of the ceiling's closed-loop capacity (the same offered "
                  f"rates for both), stopping "
                  f"at the first step that misses; a step holds "
                  f"when p99 ≤ {P99_BOUND_MS:.0f} ms, no error and ≥ 95 % of the offered rate achieved. tally: "
                  f"{describe_steps(got['steps'])}. Ceiling: {describe_steps(ceiling['steps'])}. Last tally step: "
                  f"{got['steps'][-1]['cpu']}; generator lag p99 {ms(got['steps'][-1]['generator_lag_p99_ms'])}. "
                  f"{got['steps'][-1]['check']}.")),
        Row(name=f"ingest bulk ({PER_REQUEST:,} events/request)", value=rate(bulk_t["events_per_s"]),
            ceiling=f"{rate(bulk_c['events_per_s'])} parse + pipelined XADD",
            ratio=ratio(bulk_t["events_per_s"], bulk_c["events_per_s"]),
            target="≥ 80 % of parse + pipelined XADD, dedup included",
            verdict=verdict(bulk_t["events_per_s"] >= TARGET * bulk_c["events_per_s"]),
            note=(f"POST /v1/events/bulk, closed loop: {BULK_CONNECTIONS} connections back to back for "
                  f"{plan.bulk_seconds:g} s after {plan.warmup:g} s warm-up; every event with its own event_id (dedup "
                  f"checked, duplicates reported {bulk_t['duplicates']}); best of {plan.rounds} alternating runs "
                  f"(tally {bulk_t['runs']}, ceiling {bulk_c['runs']} ev/s). Best runs: {bulk_t['ok']} requests "
                  f"measured, p50 "
                  f"{ms(bulk_t['p50_ms'])}, p99 {ms(bulk_t['p99_ms'])} per request (ceiling "
                  f"{ms(bulk_c['p50_ms'])}, {ms(bulk_c['p99_ms'])}); errors {bulk_t['errors']} (ceiling "
                  f"{bulk_c['errors']}). {bulk_t['cpu']} (ceiling {bulk_c['server_ms_per_request']:.2f} ms), i.e. "
                  f"{bulk_t['server_ms_per_request'] / PER_REQUEST * 1000:.0f} µs of server CPU per event (ceiling "
                  f"{bulk_c['server_ms_per_request'] / PER_REQUEST * 1000:.0f} µs): with a whole core, at most "
                  f"~{per_core(bulk_t) * PER_REQUEST:,.0f} ev/s (ceiling ~{per_core(bulk_c) * PER_REQUEST:,.0f}). "
                  f"{bulk_t['check']}.")),
    ]


async def bench_ingest(fsync: str, plan: IngestPlan) -> list[Row]:
    with own_redis(fsync) as store:
        await prepare(store.url, plan.customers)
        tally_port, ceiling_port = free_port(), free_port()
        ceiling_argv = [sys.executable, "-m", "bench.ingest_ceiling_app", "--port", str(ceiling_port),
                        "--redis-url", store.url]
        with server(tally_argv(tally_port), tally_port, tally_env(store.url)) as tally, \
                server(ceiling_argv, ceiling_port, {}) as bare:
            targets = [Target("ceiling", ceiling_port, bare.pid), Target("tally", tally_port, tally.pid)]
            found: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
            runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
            for _ in range(plan.rounds):
                for t in targets:
                    runs[t.name].append(await capacity(t, store.pid, store.url, plan))
            for t in targets:
                found[t.name]["capacity"] = best(runs[t.name], "achieved_rps")
            for t in targets:
                found[t.name]["steps"] = await steps(t, store.pid, store.url, plan,
                                                     found["ceiling"]["capacity"]["achieved_rps"])
            runs = {t.name: [] for t in targets}
            for _ in range(plan.rounds):
                for t in targets:
                    runs[t.name].append(await bulk(t, store.pid, store.url, plan))
            for t in targets:
                found[t.name]["bulk"] = best(runs[t.name], "events_per_s")
    return rows(found["tally"], found["ceiling"], plan)
