"""Replay of a store whose history is mostly archived, against a replay of the same history from Redis alone.

One store, one run: N events appended and a first rebuild (so that a projection has folded them); then the
ceiling, a rebuild_all reading every entry from the customer streams; then `Archiver` moves every folded entry
into Parquet segments (a local folder) and trims the streams, N/10 more events are appended (the live tail), and
the figure is a rebuild_all reading the archive + that tail. Rates are events / the rebuild's own seconds
(ReplayReport.rate), so the two rebuilds of different sizes compare per event. Target: at least as fast. The store
is used through a client from store.connect, as `tally ops replay` opens it.
"""

import os
import statistics
import tempfile
from pathlib import Path

import msgspec
from redis.asyncio import Redis

from bench import workload
from bench.fold import PARTITIONS
from bench.machine import SUBJECT_CPU, own_redis, pin, unpin
from bench.replay import DEDUP_TTL, rebuild
from bench.report import Row, rate, ratio, verdict
from cli.components import archive_settings
from cli.settings import Settings
from store.archive.archiver import Archiver
from store.archive.objects import LocalFiles
from store.connect import connect
from store.eventstore import EventStore
from store.keys import Keys


async def archive_all(redis: Redis, keys: Keys, folder: Path) -> int:
    settings = msgspec.structs.replace(archive_settings(Settings(), "bench"), after_ms=0, lease_ttl_ms=30_000)
    archiver = Archiver(redis, keys, LocalFiles(folder), settings)
    rows = 0
    for partition in range(keys.partitions):
        report = await archiver.run(partition)
        if report.problem:
            raise RuntimeError(report.problem)
        rows += report.rows
    return rows


async def bench_archive_replay(fsync: str, count: int, customers: int, rounds: int) -> list[Row]:
    with own_redis(fsync) as server, tempfile.TemporaryDirectory() as folder:
        redis = connect(server.url)
        try:
            keys = Keys(PARTITIONS)
            store = EventStore(redis, keys, DEDUP_TTL)
            await workload.create_wallets(store, customers)
            await workload.append_all(store, workload.mixed("archived", count - customers, customers))
            await rebuild(redis, keys)  # a projection that folded everything: what the archive may take
            pin(os.getpid(), SUBJECT_CPU)
            try:
                from_redis = [(await rebuild(redis, keys))[0] for _ in range(rounds)]
                archived = await archive_all(redis, keys, Path(folder))
                await workload.append_all(store, workload.mixed("tail", count // 10, customers, seed=11))
                from_archive = [(await rebuild(redis, keys))[0] for _ in range(rounds)]
            finally:
                unpin()
            left = sum([int(await redis.xlen(keys.log(ref))) for p in range(PARTITIONS)
                        for ref in await store.accounts(p)])
        finally:
            await redis.aclose()
    value = statistics.median(r.rate for r in from_archive)
    ceiling = statistics.median(r.rate for r in from_redis)
    return [Row(
        name="replay, history mostly archived", value=rate(value), ceiling=f"{rate(ceiling)} replay from Redis alone",
        ratio=ratio(value, ceiling), target="≥ 1.0x (at least as fast)", verdict=verdict(value >= ceiling),
        note=(f"{count:,} events over {customers:,} customers on {PARTITIONS} partitions, rebuilt from the streams "
              f"({from_redis[0].events:,} events); then {archived:,} archived into Parquet (zstd, a local folder) and "
              f"trimmed, {count // 10:,} more appended, rebuilt from archive + Redis ({from_archive[0].events:,} "
              f"events, {left:,} of them still in Redis); median of {rounds} each, ReplayReport.rate."),
    )]
