"""Alert latency: acknowledged append of the event that crosses a wallet's critical threshold -> its transition on
the partition's alerts stream, at a steady offered rate.

Every customer has a PRE_PAID wallet with a critical alert (balance below THRESHOLD) and initial credits of
THRESHOLD + k * the usage price, so its k-th usage event (k spread over the run, known in advance) drops it into
alarm. The producer appends usage only, through EventStore.append_each in 10 ms ticks (bench.freshness.produce),
noting when each append was acknowledged and at which customer-stream position. A reader in the same process
XREADs (blocking) the 16 Keys.notices(p) streams and notes when each entry arrived; a transition is matched to its
crossing event by the payload's `customer_id` and `position` (the event's log position). A real `tally projector`
process folds. The ceiling is bench.alert_follower on other customers of the same Redis: it follows the feeds,
counts each customer's entries without decoding them and XADDs a marker at the crossing one, with the checkpoint.
"""

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from redis.asyncio import Redis

from bench import workload
from bench.fold import PARTITIONS
from bench.freshness import Accepted, produce, wait_caught_up
from bench.machine import REDIS_CPU, SUBJECT_CPU, CpuMeter, last_words, own_redis, pin, spawn, stop_process, unpin
from bench.report import Row, ms, percentile, verdict
from domain.settings import AlertSettings, AlertThreshold
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import ORIGIN, text
from store.projection import Projection
from store.ratecard import add_price

TARGET_P99_MS = 100.0
THRESHOLD = Decimal(1)
UNIT = workload.USAGE_PRICE.amount or Decimal("0.01")  # the credits one usage event costs (COUNT, flat fee)
SETTINGS = AlertSettings(alert_enabled=True, critical=AlertThreshold(threshold=THRESHOLD, condition="below"))
TALLY_EVENT, CEILING_EVENT = "wallet.ongoing_balance.dropped", "ceiling.crossed"
DEDUP_TTL = 35 * 24 * 3600
READ_BLOCK_MS = 100

Crossings = dict[int, int]  # customer index -> index (1-based) of its usage event that crosses the threshold
Key = tuple[str, str]  # (customer id, log position)


class Phase(msgspec.Struct):
    name: str
    argv: list[str]
    env: dict[str, str]
    event_type: str
    items: list[workload.Item]
    crossings: Crossings
    ready_key: str | None = None


def crossing_plan(offset: int, customers: int, per_customer: float) -> Crossings:
    """Customer offset+j crosses at its k-th usage event, k spread (deterministically) over 1..0.9 * its share."""
    spread = max(1, int(per_customer * 0.9))
    return {offset + j: 1 + (j * 7919) % spread for j in range(customers)}


def usage(tag: str, offset: int, customers: int, count: int, seed: int) -> list[workload.Item]:
    """`count` UsageRecorded events for customers offset..offset+customers-1, picked at random (seeded)."""
    rng = random.Random(seed)
    items = []
    for n in range(count):
        i = offset + rng.randrange(customers)
        items.append(workload.with_dedup(workload.ref(i), workload.event(tag, n, i, False)))
    return items


async def create_alert_wallets(store: EventStore, crossings: Crossings) -> None:
    """The usage price, then per customer an indexed PRE_PAID wallet with a critical alert and its initial credits."""
    await add_price(store.redis, store.keys, workload.TENANT, workload.ENVIRONMENT, workload.USAGE_PRICE)
    for i in crossings:
        await store.index_wallet(workload.wallet_id(i), workload.ref(i))
    wallets = [
        workload.with_dedup(workload.ref(i), msgspec.structs.replace(
            workload.wallet_created(i), alert_settings=SETTINGS, initial_credits=THRESHOLD + UNIT * k,
            initial_transaction_id=f"wtx_init_{i:05d}"))
        for i, k in crossings.items()
    ]
    await workload.append_all(store, wallets)


def expected(items: list[workload.Item], accepted: Accepted, crossings: Crossings) -> dict[Key, float]:
    """(customer, log position) of each crossing event that was appended -> when its append was acknowledged."""
    index = {workload.customer_id(i): k for i, k in crossings.items()}
    counts: dict[str, int] = {}
    found: dict[Key, float] = {}
    for (ref, _, _), (_, position, at) in zip(items, accepted.events, strict=True):
        count = counts[ref.customer_id] = counts.get(ref.customer_id, 0) + 1
        if count == index[ref.customer_id]:
            found[(ref.customer_id, position)] = at
    return found


async def stream_ends(redis: Redis, keys: Keys) -> dict[bytes, str]:
    ends: dict[bytes, str] = {}
    for p in range(PARTITIONS):
        last: Any = await redis.xrevrange(keys.notices(p), count=1)
        ends[keys.notices(p).encode()] = text(last[0][0]) if last else ORIGIN
    return ends


async def read_alerts(url: str, after: dict[bytes, str], stop: asyncio.Event, seen: list[tuple[bytes, float]]) -> None:
    """Blocking XREAD of every alerts stream; each entry's payload and the instant the reply arrived."""
    redis = Redis.from_url(url)
    streams: dict[Any, Any] = dict(after)
    try:
        while not stop.is_set():
            reply: Any = await redis.xread(streams, block=READ_BLOCK_MS)
            now = time.perf_counter()
            for stream, entries in reply or []:
                for _, fields in entries:
                    seen.append((fields[b"a"], now))
                streams[stream] = entries[-1][0]
    finally:
        await redis.aclose()


async def wait_ready(redis: Redis, key: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.perf_counter() + timeout
    while not await redis.exists(key):
        if process.poll() is not None:
            raise RuntimeError(f"the follower exited with {process.returncode}: {last_words(process)}")
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{key} not set within {timeout}s")
        await asyncio.sleep(0.02)


async def run_phase(url: str, redis_pid: int, phase: Phase, rate: float, warmup: float) -> dict[str, Any]:
    """Start the folding process, let it catch up, produce at `rate` while reading the alerts streams, match."""
    redis, keys = Redis.from_url(url), Keys(PARTITIONS)
    store, projection = EventStore(redis, keys, DEDUP_TTL), Projection(redis, keys)
    process = spawn(phase.argv, phase.env)
    seen: list[tuple[bytes, float]] = []
    stop = asyncio.Event()
    accepted = Accepted()
    reader: asyncio.Task[None] | None = None
    try:
        pin(process.pid, SUBJECT_CPU)
        if phase.ready_key:
            await wait_ready(redis, phase.ready_key, process)
        await wait_caught_up(redis, keys, projection, process, timeout=60)
        reader = asyncio.create_task(read_alerts(url, await stream_ends(redis, keys), stop, seen))
        meter = CpuMeter(**{"bench": os.getpid(), phase.name: process.pid, "redis": redis_pid})
        meter.start()
        started = time.perf_counter()
        seconds = await produce(store, phase.items, rate, accepted)
        await wait_caught_up(redis, keys, projection, process, timeout=60)
        await asyncio.sleep(READ_BLOCK_MS / 1000 * 2)  # alerts commit with the checkpoint: they are all there now
        per_event = meter.cpu_seconds(phase.name) / len(phase.items) * 1e6
        cpu = f"{meter.stop()}; {phase.name} CPU per event {per_event:.0f} µs"
    finally:
        stop.set()
        if reader is not None:
            await reader
        stop_process(process)
        await redis.aclose()
    return match(phase, accepted, seen, started + warmup) | {"achieved": len(phase.items) / seconds, "cpu": cpu}


def match(phase: Phase, accepted: Accepted, seen: list[tuple[bytes, float]], after: float) -> dict[str, Any]:
    wanted = expected(phase.items, accepted, phase.crossings)
    arrived: dict[Key, float] = {}
    unexpected = duplicates = others = 0
    for raw, at in seen:
        payload = json.loads(raw)
        if payload.get("event_type") != phase.event_type:
            others += 1
            continue
        key = (payload["customer_id"], payload["position"])
        if key not in wanted:
            unexpected += 1
        elif key in arrived:
            duplicates += 1
        else:
            arrived[key] = at
    gaps = sorted(max(0.0, arrived[k] - acked) for k, acked in wanted.items() if k in arrived and acked >= after)
    return {"p50": percentile(gaps, 0.5) * 1000, "p99": percentile(gaps, 0.99) * 1000,
            "max": (gaps[-1] if gaps else float("nan")) * 1000, "measured": len(gaps), "expected": len(wanted),
            "missing": len(wanted) - len(arrived), "unexpected": unexpected, "duplicates": duplicates,
            "others": others}


async def bench_alerts(fsync: str, customers: int, rate: float, warmup: float, duration: float) -> list[Row]:
    count = int(rate * (warmup + duration))
    tally_plan = crossing_plan(0, customers, count / customers)
    bare_plan = crossing_plan(customers, customers, count / customers)
    with own_redis(fsync) as server, tempfile.TemporaryDirectory(prefix="tally-bench-alerts-") as scratch:
        redis = Redis.from_url(server.url)
        try:
            await create_alert_wallets(EventStore(redis, Keys(PARTITIONS), DEDUP_TTL), tally_plan | bare_plan)
        finally:
            await redis.aclose()
        plan_file = Path(scratch) / "crossings.json"
        plan_file.write_text(json.dumps({str(i): k for i, k in bare_plan.items()}))
        env = {"TALLY_REDIS_URL": server.url, "TALLY_PARTITIONS": str(PARTITIONS), "TALLY_LOG_LEVEL": "WARNING"}
        projector = Phase("projector", [sys.executable, "-c", "from cli.main import run; run()", "projector"], env,
                          TALLY_EVENT, usage("al", 0, customers, count, 5), tally_plan)
        bare = Phase("follower", [sys.executable, "-m", "bench.alert_follower", "--redis-url", server.url,
                                       "--crossings", str(plan_file)], {}, CEILING_EVENT,
                     usage("ab", customers, customers, count, 6), bare_plan, "bench:alert-follower:ready")
        pin(os.getpid(), REDIS_CPU)
        try:
            got = await run_phase(server.url, server.pid, projector, rate, warmup)
            ceiling = await run_phase(server.url, server.pid, bare, rate, warmup)
        finally:
            unpin()
    sound = not (got["missing"] or got["unexpected"] or got["duplicates"])
    return [Row(
        name=f"alert latency @ {rate:,.0f} ev/s", value=f"p50 {ms(got['p50'])}, p99 {ms(got['p99'])}",
        ceiling=f"p50 {ms(ceiling['p50'])}, p99 {ms(ceiling['p99'])} bare follow + XADD",
        ratio=ceiling["p99"] / got["p99"] if got["p99"] > 0 else None,
        target=f"p99 < {TARGET_P99_MS:.0f} ms", verdict=verdict(got["p99"] < TARGET_P99_MS and sound),
        note=(f"from append_each acknowledging the crossing event (a negative gap counts as 0) to a blocking XREAD "
              f"of the alerts streams returning its {TALLY_EVENT} transition (matched by customer and payload "
              f"`position` = the event's log position). {customers:,} wallets with a critical alert (below "
              f"{THRESHOLD}) each crossing at a known usage event spread over the run; `tally projector` in its own "
              f"process; usage only, producer offered {rate:,.0f} ev/s in 10 ms ticks, achieved "
              f"{got['achieved']:,.0f}; {got['measured']:,} crossings after {warmup:g} s warm-up of "
              f"{got['expected']:,} expected, missing {got['missing']}, unexpected {got['unexpected']}, duplicated "
              f"{got['duplicates']}, other alert entries {got['others']}; max {ms(got['max'])}. {got['cpu']}. "
              f"Ceiling: bench.alert_follower (follows the feeds, counts entries per customer without decoding, "
              f"XADDs a marker at the crossing entry with the checkpoint) on {customers:,} other customers: "
              f"{ceiling['measured']:,} crossings, missing {ceiling['missing']}, max {ms(ceiling['max'])}, achieved "
              f"{ceiling['achieved']:,.0f} ev/s; {ceiling['cpu']}."),
    )]
