"""Rebuild rate: projector.replay.Replayer.rebuild_all from the customer streams vs bare XRANGE of the same streams.

The figure is ReplayReport.rate: events folded over the rebuild itself (planning, reading, folding, writing the
next generation's snapshots and checkpoints), without the generation switch's settling pause. The ceiling reads the
same streams the same way (account by account, XRANGE pages of store.log_read.LOG_PAGE entries) and decodes
nothing. Both run in the bench process, pinned to the subject CPU (Redis on the other). The rebuild runs on a client
from store.connect, as `tally ops replay` opens it; the ceiling on a plain client.
"""

import os
import statistics
import time
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from bench import workload
from bench.fold import PARTITIONS
from bench.machine import SUBJECT_CPU, CpuMeter, own_redis, pin, unpin
from bench.report import Row, rate, ratio, verdict
from cli.settings import Settings
from projector.replay import SWITCH_SETTLE_S, Replayer, ReplayReport
from store.connect import connect
from store.eventstore import EventStore
from store.generation import live_generation
from store.keys import Keys
from store.log_read import LOG_PAGE
from store.positions import text

TARGET = 0.60  # DESIGN §5: replay at ≥ 60 % of a bare XRANGE of the same streams
DEDUP_TTL = 35 * 24 * 3600


async def time_xrange(store: EventStore) -> tuple[int, float]:
    """The ceiling: every account's stream, page by page, as Replayer reads it, without decoding an entry."""
    started, entries = time.perf_counter(), 0
    for partition in range(store.keys.partitions):
        for ref in await store.accounts(partition):
            start = "-"
            while True:
                page: Any = await store.redis.xrange(store.keys.log(ref), min=start, max="+", count=LOG_PAGE)
                entries += len(page)
                if len(page) < LOG_PAGE:
                    break
                start = f"({text(page[-1][0])}"
    return entries, time.perf_counter() - started


async def rebuild(redis: Redis, keys: Keys) -> tuple[ReplayReport, float]:
    """One rebuild_all (dry_run=False): its report, and the wall time of the whole call (switch and settle too)."""
    grace = timedelta(seconds=Settings().period_grace_seconds)
    started = time.perf_counter()
    report = await Replayer(redis, keys, grace, DEDUP_TTL).rebuild_all(dry_run=False, progress=lambda d, t: None)
    return report, time.perf_counter() - started


async def bench_replay(fsync: str, count: int, customers: int, rounds: int) -> list[Row]:
    with own_redis(fsync) as server:
        redis, production = Redis.from_url(server.url), connect(server.url)
        try:
            keys = Keys(PARTITIONS)
            store = EventStore(redis, keys, DEDUP_TTL)
            await workload.create_wallets(store, customers)
            await workload.append_all(store, workload.mixed("replay", count - customers, customers))
            meter = CpuMeter(bench=os.getpid(), redis=server.pid)
            rates, reads, walls, cpu, read_cpu = [], [], [], "", ""
            pin(os.getpid(), SUBJECT_CPU)
            try:
                for _ in range(rounds):
                    meter.start()
                    entries, seconds = await time_xrange(store)
                    reads.append(entries / seconds)
                    read_cpu = f"{meter.stop()}"
                    meter.start()
                    report, wall = await rebuild(production, keys)
                    per_event = meter.cpu_seconds("bench") / max(1, report.events) * 1e6
                    cpu = (f"{meter.stop()} (over the whole call, settle included); CPU per event {per_event:.1f} "
                           f"µs, so at most ~{1e6 / per_event:,.0f} ev/s with a whole core")
                    if report.events != entries or not report.switched:
                        raise RuntimeError(f"the rebuild folded {report.events} events of {entries} "
                                           f"(switched {report.switched})")
                    rates.append(report.rate)
                    walls.append(wall)
            finally:
                unpin()
            generation = await live_generation(redis, keys)
        finally:
            await redis.aclose()
            await production.aclose()
    value, ceiling = statistics.median(rates), statistics.median(reads)
    return [Row(
        name="replay rebuild_all", value=rate(value), ceiling=f"{rate(ceiling)} bare XRANGE",
        ratio=ratio(value, ceiling), target="≥ 60 % of bare XRANGE", verdict=verdict(value >= TARGET * ceiling),
        note=(f"{count:,} events ({customers:,} WalletCreated, then 1 in {workload.GRANT_EVERY} CreditsGranted, rest "
              f"UsageRecorded) over {customers:,} customers on {PARTITIONS} partitions; "
              f"Replayer(...).rebuild_all(dry_run=False) in the bench process, ReplayReport.rate (events / the "
              f"rebuild's own seconds, the switch's {SWITCH_SETTLE_S:g} s settle excluded); median of {rounds} "
              f"(each round rebuilds the next generation; live generation at the end {generation}); per round "
              f"{', '.join(rate(r) for r in rates)}, whole call {', '.join(f'{w:.1f} s' for w in walls)}. "
              f"Last round: {cpu}. Ceiling: the same streams read account by account with XRANGE COUNT {LOG_PAGE}, "
              f"nothing decoded ({read_cpu})."),
    )]
