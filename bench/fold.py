"""Projector fold rate: a real projector from zero to the feed heads vs a bare XREAD of the same feed entries."""

import asyncio
import os
import statistics
import time
from typing import Any

from redis.asyncio import Redis

from bench import workload
from bench.machine import CpuMeter, own_redis
from bench.report import Row, rate, ratio, verdict
from cli.settings import Settings
from cli.wiring import run_projector
from store.connect import connect
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import ORIGIN, is_after, text
from store.projection import Projection

PARTITIONS = 16
TARGET = 0.60  # DESIGN §5: the fold at ≥ 60 % of a bare XREAD of the same feeds
POLL_SECONDS = 0.005
STALL_SECONDS = 15.0


def projector_settings(batch: int) -> Settings:
    """Feed trimming off: a trimmed feed would leave the next round (and the XREAD ceiling) less to read."""
    return Settings(partitions=PARTITIONS, batch_size=batch, trim_every_batches=0, request_log=False,
                    log_level="WARNING")


async def heads(projection: Projection) -> list[str]:
    return [await projection.feed_head(p) for p in range(PARTITIONS)]


async def checkpoints(redis: Redis, keys: Keys) -> list[str]:
    values: Any = await redis.mget([keys.checkpoint(p) for p in range(PARTITIONS)])
    return [text(v) if v else ORIGIN for v in values]


async def caught_up(redis: Redis, keys: Keys, targets: list[str]) -> bool:
    return all(not is_after(head, c) for head, c in zip(targets, await checkpoints(redis, keys), strict=True))


async def time_projector(url: str, keys: Keys, targets: list[str], batch: int, timeout: float) -> float:
    """Start a projector (cli.wiring.run_projector, on a client from store.connect as `tally projector` opens it)
    and poll the checkpoints until every one reaches its head."""
    worker, poller = connect(url), Redis.from_url(url)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(run_projector(worker, projector_settings(batch), stop, "bench-projector"))
    last, moved = await checkpoints(poller, keys), started
    try:
        while not await caught_up(poller, keys, targets):
            if task.done():
                task.result()
                raise RuntimeError("the projector stopped before catching up")
            now, current = time.perf_counter(), await checkpoints(poller, keys)
            if current != last:
                last, moved = current, now
            if now - started > timeout or now - moved > STALL_SECONDS:
                raise TimeoutError(f"the projector stopped moving its checkpoints at {last} (a failing worker?)")
            await asyncio.sleep(POLL_SECONDS)
        return time.perf_counter() - started
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await worker.aclose()
        await poller.aclose()


async def time_xread(redis: Redis, keys: Keys, targets: list[str], batch: int) -> float:
    """The ceiling: each partition's feed read from the start with XREAD COUNT batch, concurrently, no folding."""

    async def drain(partition: int) -> None:
        after = ORIGIN
        while is_after(targets[partition], after):
            reply: Any = await redis.xread({keys.feed(partition): after}, count=batch)
            after = text(reply[0][1][-1][0])

    started = time.perf_counter()
    await asyncio.gather(*(drain(p) for p in range(PARTITIONS)))
    return time.perf_counter() - started


async def reset_projection(redis: Redis, keys: Keys, customers: int) -> None:
    await redis.delete(*(keys.checkpoint(p) for p in range(PARTITIONS)))
    await redis.delete(*(keys.snapshot(workload.ref(i)) for i in range(customers)))


async def bench_fold(fsync: str, count: int, customers: int, batch: int, rounds: int) -> list[Row]:
    with own_redis(fsync) as server:
        redis = Redis.from_url(server.url)
        try:
            keys = Keys(PARTITIONS)
            store, projection = EventStore(redis, keys, 35 * 24 * 3600), Projection(redis, keys)
            await workload.create_wallets(store, customers)
            await workload.append_all(store, workload.mixed("fold", count - customers, customers))
            targets = await heads(projection)
            meter = CpuMeter(bench=os.getpid(), redis=server.pid)
            fold_rates, read_rates, cpu = [], [], ""
            for _ in range(rounds):
                read_rates.append(count / await time_xread(redis, keys, targets, batch))  # before any feed trim
                await reset_projection(redis, keys, customers)
                meter.start()
                fold_rates.append(count / await time_projector(server.url, keys, targets, batch, timeout=120))
                per_event = meter.cpu_seconds("bench") / count * 1e6
                cpu = f"{meter.stop()}; projector CPU per event {per_event:.1f} µs"
            snapshot_bytes = statistics.median([len(s.state or b"") for s in await projection.load_snapshots(
                [workload.ref(i) for i in range(customers)])])
        finally:
            await redis.aclose()
    value, ceiling = statistics.median(fold_rates), statistics.median(read_rates)
    return [Row(
        name="projector fold (1 process)", value=rate(value), ceiling=f"{rate(ceiling)} bare XREAD",
        ratio=ratio(value, ceiling), target="≥ 60 % of bare XREAD", verdict=verdict(value >= TARGET * ceiling),
        note=(f"{count:,} events ({customers:,} WalletCreated, then 1 in {workload.GRANT_EVERY} CreditsGranted, rest "
              f"UsageRecorded) over {customers:,} customers on {PARTITIONS} partitions, batch {batch}; "
              f"cli.wiring.run_projector in-process (feed trimming off) from zero until every checkpoint reaches its "
              f"feed head (polled every {POLL_SECONDS * 1000:.0f} ms); median of {rounds}. Last round: {cpu}. "
              f"Median snapshot {snapshot_bytes:,.0f} B."),
    )]
