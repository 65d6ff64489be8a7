"""Freshness: accepted (append acknowledged) -> folded into the snapshot, at a steady offered rate.

The producer appends through EventStore.append_each on a fixed schedule (open loop) and notes, per event, when
its append was acknowledged. A poller reads the 16 partition checkpoints every POLL_SECONDS; the checkpoint moves
in the same atomic step as the snapshots it covers, so an event is folded once its partition's checkpoint has
reached its feed entry. Feed ids are matched to appends after the run (feed field `l` = customer-stream id).
"""

import asyncio
import bisect
import os
import subprocess
import sys
import time
from typing import Any

from redis.asyncio import Redis

from bench import workload
from bench.fold import PARTITIONS, caught_up, heads
from bench.machine import REDIS_CPU, SUBJECT_CPU, CpuMeter, last_words, own_redis, pin, spawn, stop_process, unpin
from bench.report import Row, ms, percentile, verdict
from domain.codec import encode_ref
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import ORIGIN, parse, text
from store.projection import Projection

POLL_SECONDS = 0.002
TICK_SECONDS = 0.01
TARGET_P99_MS = 50.0


class Accepted:
    """What the producer saw: per event its (encoded ref, log position, acknowledged at)."""

    def __init__(self) -> None:
        self.events: list[tuple[bytes, str, float]] = []


async def produce(store: EventStore, items: list[workload.Item], rate: float, accepted: Accepted) -> float:
    """Append `items` at `rate` per second: each tick, everything due by then, in one pipeline. Returns seconds."""
    started, sent, tick = time.perf_counter(), 0, 0
    while sent < len(items):
        due = min(len(items), int((time.perf_counter() - started) * rate) + 1)
        if due > sent:
            batch = items[sent:due]
            results = await store.append_each(batch)
            now = time.perf_counter()
            for (ref, _, _), result in zip(batch, results, strict=True):
                if result.status != "appended":
                    raise RuntimeError(f"append refused during the freshness run: {result}")
                accepted.events.append((encode_ref(ref), result.positions[0], now))
            sent = due
        tick += 1
        await asyncio.sleep(max(0.0, started + tick * TICK_SECONDS - time.perf_counter()))
    return time.perf_counter() - started


Series = list[list[tuple[tuple[int, int], float]]]  # per partition: (checkpoint, first seen at), increasing
FeedIds = dict[tuple[bytes, str], tuple[int, tuple[int, int]]]


async def poll(redis: Redis, keys: Keys, stop: asyncio.Event, series: Series) -> None:
    """Record, per partition, each new checkpoint and the first instant it was seen."""
    names = [keys.checkpoint(p) for p in range(PARTITIONS)]
    while not stop.is_set():
        values: Any = await redis.mget(names)
        now = time.perf_counter()
        for p, value in enumerate(values):
            position = parse(text(value) if value else ORIGIN)
            if not series[p] or position > series[p][-1][0]:
                series[p].append((position, now))
        await asyncio.sleep(POLL_SECONDS)


async def feed_ids(redis: Redis, keys: Keys, since: list[str]) -> FeedIds:
    """(encoded ref, customer-stream id) -> (partition, feed id) for every feed entry after `since`."""
    found: FeedIds = {}
    for p in range(PARTITIONS):
        entries: Any = await redis.xrange(keys.feed(p), min=f"({since[p]}", max="+")
        for entry_id, fields in entries:
            found[(fields[b"c"], text(fields[b"l"]))] = (p, parse(text(entry_id)))
    return found


def latencies(accepted: Accepted, ids: FeedIds, series: Series, after: float) -> tuple[list[float], int]:
    """Seconds from acknowledgement to the first poll that saw the event folded; and how many never were."""
    keys_by_partition = [[position for position, _ in s] for s in series]
    out, missing = [], 0
    for ref, log_id, at in accepted.events:
        if at < after:
            continue
        partition, feed_id = ids[(ref, log_id)]
        i = bisect.bisect_left(keys_by_partition[partition], feed_id)
        if i == len(series[partition]):
            missing += 1
            continue
        out.append(max(0.0, series[partition][i][1] - at))
    return sorted(out), missing


async def wait_caught_up(redis: Redis, keys: Keys, projection: Projection, process: subprocess.Popen[bytes],
                         timeout: float) -> None:
    targets, deadline = await heads(projection), time.perf_counter() + timeout
    while not await caught_up(redis, keys, targets):
        if process.poll() is not None:
            raise RuntimeError(f"the follower exited with {process.returncode}: {last_words(process)}")
        if time.perf_counter() > deadline:
            raise TimeoutError(f"checkpoints did not reach the feed heads within {timeout}s")
        await asyncio.sleep(POLL_SECONDS)


class Phase:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name, self.argv, self.env = name, argv, env


class Observed:
    def __init__(self, since: list[str]) -> None:
        self.since = since
        self.series: Series = [[] for _ in range(PARTITIONS)]
        self.accepted = Accepted()
        self.started = self.seconds = 0.0


async def observe(url: str, store: EventStore, projection: Projection, process: subprocess.Popen[bytes],
                  items: list[workload.Item], rate: float) -> Observed:
    """Produce at `rate` while polling the checkpoints, and keep polling until the follower has caught up."""
    observed, stop, poller_redis = Observed(await heads(projection)), asyncio.Event(), Redis.from_url(url)
    poller = asyncio.create_task(poll(poller_redis, store.keys, stop, observed.series))
    try:
        observed.started = time.perf_counter()
        observed.seconds = await produce(store, items, rate, observed.accepted)
        await wait_caught_up(store.redis, store.keys, projection, process, timeout=60)
        await asyncio.sleep(POLL_SECONDS * 3)
    finally:
        stop.set()
        await poller
        await poller_redis.aclose()
    return observed


async def run_phase(url: str, redis_pid: int, phase: Phase, items: list[workload.Item], rate: float,
                    warmup: float) -> dict[str, Any]:
    """Start the follower, let it catch up, then observe a steady run and match feed ids to appends."""
    redis = Redis.from_url(url)
    keys = Keys(PARTITIONS)
    store, projection = EventStore(redis, keys, 35 * 24 * 3600), Projection(redis, keys)
    process = spawn(phase.argv, phase.env)
    try:
        pin(process.pid, SUBJECT_CPU)
        await wait_caught_up(redis, keys, projection, process, timeout=60)
        meter = CpuMeter(bench=os.getpid(), follower=process.pid, redis=redis_pid)
        meter.start()
        seen = await observe(url, store, projection, process, items, rate)
        per_event = meter.cpu_seconds("follower") / len(items) * 1e6
        cpu = f"{meter.stop()}; follower CPU per event {per_event:.0f} µs"
        ids = await feed_ids(redis, keys, seen.since)
    finally:
        stop_process(process)
        await redis.aclose()
    found, missing = latencies(seen.accepted, ids, seen.series, seen.started + warmup)
    return {"p50": percentile(found, 0.5) * 1000, "p99": percentile(found, 0.99) * 1000, "max": found[-1] * 1000,
            "events": len(found), "missing": missing, "achieved": len(items) / seen.seconds, "cpu": cpu}


async def bench_freshness(fsync: str, customers: int, rate: float, warmup: float, duration: float) -> list[Row]:
    count = int(rate * (warmup + duration))
    with own_redis(fsync) as server:
        redis = Redis.from_url(server.url)
        try:
            await workload.create_wallets(EventStore(redis, Keys(PARTITIONS), 35 * 24 * 3600), customers)
        finally:
            await redis.aclose()
        # Feed trimming off (TALLY_TRIM_EVERY_BATCHES=0) so every feed entry is still there to be matched afterwards.
        env = {"TALLY_REDIS_URL": server.url, "TALLY_PARTITIONS": str(PARTITIONS), "TALLY_LOG_LEVEL": "WARNING",
               "TALLY_TRIM_EVERY_BATCHES": "0"}
        projector = Phase("projector", [sys.executable, "-c", "from cli.main import run; run()", "projector"], env)
        bare = Phase("bare follower", [sys.executable, "-m", "bench.follower", "--redis-url", server.url], {})
        pin(os.getpid(), REDIS_CPU)
        try:
            got = await run_phase(server.url, server.pid, projector, workload.mixed("fr", count, customers), rate,
                                  warmup)
            ceiling = await run_phase(server.url, server.pid, bare, workload.mixed("fb", count, customers), rate,
                                      warmup)
        finally:
            unpin()
    return [Row(
        name=f"freshness @ {rate:,.0f} ev/s", value=f"p50 {ms(got['p50'])}, p99 {ms(got['p99'])}",
        ceiling=f"p50 {ms(ceiling['p50'])}, p99 {ms(ceiling['p99'])} bare follow",
        ratio=ceiling["p99"] / got["p99"] if got["p99"] > 0 else None,
        target=f"p99 < {TARGET_P99_MS:.0f} ms", verdict=verdict(got["p99"] < TARGET_P99_MS and not got["missing"]),
        note=(f"accepted = append_each acknowledged (a negative gap counts as 0); folded = first checkpoint poll "
              f"(every {POLL_SECONDS * 1000:.0f} ms) at or past the event's feed entry. `tally projector` in its own "
              f"process (feed trimming off, so entries can be matched); producer offered {rate:,.0f} ev/s in "
              f"{TICK_SECONDS * 1000:.0f} ms ticks, achieved {got['achieved']:,.0f}; {got['events']:,} events after "
              f"{warmup:g} s warm-up, max {ms(got['max'])}, never folded {got['missing']}. {got['cpu']}. Ceiling: a "
              f"follower that XREADs the feeds and moves the checkpoints without folding (max {ms(ceiling['max'])}, "
              f"achieved {ceiling['achieved']:,.0f} ev/s)."),
    )]
