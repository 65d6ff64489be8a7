"""Append rate: EventStore.append_each in pipelined batches vs raw pipelined XADD of the same payloads."""

import os
import statistics
import time
from collections.abc import Sequence

from redis.asyncio import Redis

from bench import workload
from bench.machine import CpuMeter, own_redis
from bench.report import Row, rate, ratio
from domain.codec import encode_event
from store.eventstore import EventStore
from store.keys import Keys

DEDUP_TTL = 35 * 24 * 3600


async def _time_store(store: EventStore, items: Sequence[workload.Item], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        results = await store.append_each(items[start:start + batch])
        if results[-1].status != "appended" or any(r.status != "appended" for r in results):
            raise RuntimeError("append_each refused an event of the bench (duplicate id?)")
    return time.perf_counter() - started


async def _time_xadd(redis: Redis, items: Sequence[workload.Item], batch: int) -> float:
    """The ceiling: one XADD per event of the same encoded payload into a per-customer stream."""
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        async with redis.pipeline(transaction=False) as pipe:
            for ref, event, _ in items[start:start + batch]:
                pipe.xadd(f"ceiling:{ref.customer_id}:log", {"e": encode_event(event)})
            await pipe.execute()
    return time.perf_counter() - started


async def _time_unscripted(redis: Redis, keys: Keys, items: Sequence[workload.Item], batch: int) -> float:
    """Diagnostic: the script's commands (GET dedup, 2 XADD, SADD, SET EX) sent plainly, without Lua or atomicity."""
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        async with redis.pipeline(transaction=False) as pipe:
            for ref, event, dedup in items[start:start + batch]:
                payload, tag = encode_event(event), f"plain:{ref.customer_id}"
                pipe.get(f"{tag}:seen:{dedup.key if dedup else ''}")
                pipe.xadd(f"{tag}:log", {"e": payload})
                pipe.xadd(f"plain:feed:{keys.partition_of(ref)}", {"c": ref.customer_id, "l": "0-1", "e": payload})
                pipe.sadd(f"plain:accounts:{keys.partition_of(ref)}", ref.customer_id)
                pipe.set(f"{tag}:seen:{dedup.key if dedup else ''}", "x", ex=DEDUP_TTL)
            await pipe.execute()
    return time.perf_counter() - started


def _cost(meter: CpuMeter, events: int) -> str:
    """CPU per event of the client and of Redis: unlike rates, barely moved by other load on the machine."""
    per = {name: meter.cpu_seconds(name) / events * 1e6 for name in ("bench", "redis")}
    return f"{meter.stop()}; CPU per event: client {per['bench']:.0f} µs, redis {per['redis']:.0f} µs"


async def _rounds(
    store: EventStore, redis: Redis, items: list[workload.Item], batch: int, rounds: int, meter: CpuMeter
) -> tuple[float, float, str, str]:
    """Store and ceiling alternate over `rounds` slices of the events (so background load hits both alike)."""
    size = len(items) // rounds
    store_rates, ceiling_rates, store_cpu, ceiling_cpu = [], [], "", ""
    for r in range(rounds):
        part = items[r * size:(r + 1) * size]
        meter.start()
        store_rates.append(len(part) / await _time_store(store, part, batch))
        store_cpu = _cost(meter, len(part))
        meter.start()
        ceiling_rates.append(len(part) / await _time_xadd(redis, part, batch))
        ceiling_cpu = _cost(meter, len(part))
    return statistics.median(store_rates), statistics.median(ceiling_rates), store_cpu, ceiling_cpu


async def bench_append(fsync: str, count: int, customers: int, batch: int, rounds: int, diagnose: bool) -> list[Row]:
    with own_redis(fsync) as server:
        redis = Redis.from_url(server.url)
        try:
            store = EventStore(redis, Keys(16), DEDUP_TTL)
            await workload.create_wallets(store, customers)
            await _time_store(store, workload.mixed("warm", 2_000, customers, seed=1), batch)
            await _time_xadd(redis, workload.mixed("warmx", 2_000, customers, seed=1), batch)
            items = workload.mixed("app", count, customers)
            meter = CpuMeter(bench=os.getpid(), redis=server.pid)
            store_rate, ceiling_rate, store_cpu, ceiling_cpu = await _rounds(store, redis, items, batch, rounds, meter)
            sample = items[:20_000]
            plain_rate = len(sample) / await _time_unscripted(redis, store.keys, sample, batch) if diagnose else 0.0
        finally:
            await redis.aclose()
    return [Row(
        name=f"append (appendfsync {fsync})", value=rate(store_rate), ceiling=f"{rate(ceiling_rate)} raw XADD",
        ratio=ratio(store_rate, ceiling_rate), target="none: a diagnostic (the HTTP bulk row is judged)",
        verdict="",
        note=(f"{count:,} events (1 in {workload.GRANT_EVERY} CreditsGranted, rest UsageRecorded) over {customers:,} "
              f"customers, 16 partitions, pipelines of {batch}, a dedup key each; median of {rounds} alternating "
              f"rounds. Last round store: {store_cpu}; ceiling: {ceiling_cpu}. "
              + (f"Diagnostic: the script's 5 commands per event sent plainly (no Lua, not atomic) reach "
                 f"{rate(plain_rate)}. " if diagnose else "")
              + "Store level only: the HTTP ingest route is not in this figure."),
    )]
