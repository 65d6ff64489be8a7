"""Redis Cluster beside the single server, in the same run: bulk ingest through a real `tally api`, then a projector's
fold from zero of what it ingested, on one redis-server and on a local 3-primary cluster (the test fixture,
tests/support/redis_cluster.py), with each shard's share of the load (commands processed from INFO commandstats,
keys held) and the Redis CPU spent per event (what one shard's core can take: the sizing figure in the README).

Both stores have AOF on with the same appendfsync, PARTITIONS partitions (the default of a new store) and every
Redis process pinned to the same core (REDIS_CPU), the API and the projector to the other: on this two-core machine
the cluster cannot show more throughput than one Redis core gives, so the figures compare the cost of the cluster
(client routing, one connection per node) and show how evenly the shards share the work.
"""

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as sync_redis

from bench import workload
from bench.ingest import BULK_CONNECTIONS, PER_REQUEST, IngestPlan
from bench.machine import REDIS_CPU, CpuMeter, own_redis, pin
from bench.reads import API_KEY, server, tally_argv, tally_env
from bench.report import Row, rate, ratio
from cli.settings import Settings
from cli.stores import free_port
from cli.wiring import run_projector
from store.connect import connect
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import ORIGIN, is_after, text
from tests.support.redis_cluster import RedisCluster

PARTITIONS = 256
NODES = 3
FOLD_TIMEOUT = 120.0


@dataclass
class Store:
    name: str
    url: str
    nodes: dict[int, int]  # port -> pid of each primary
    figures: dict[str, Any] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def stores(fsync: str) -> AsyncIterator[tuple[Store, Store]]:
    """A single redis-server and a 3-primary cluster, AOF on, each Redis pinned to REDIS_CPU."""
    with own_redis(fsync) as single, tempfile.TemporaryDirectory(prefix="tally-bench-cluster-") as data_dir:
        cluster = RedisCluster(Path(data_dir), primaries=NODES,
                               extra=["--appendonly", "yes", "--appendfsync", fsync])
        await asyncio.to_thread(cluster.start)
        try:
            for process in cluster.processes.values():
                pin(process.pid, REDIS_CPU)
            port = int(single.url.rsplit(":", 1)[1].split("/")[0])
            yield (Store("single server", single.url, {port: single.pid}),
                   Store(f"cluster, {NODES} primaries", cluster.url,
                         {p: proc.pid for p, proc in cluster.processes.items()}))
        finally:
            cluster.stop()


def node_counters(store: Store) -> dict[int, tuple[int, int]]:
    """Per primary: (commands processed so far, keys held)."""
    found = {}
    for port in store.nodes:
        client = sync_redis.Redis(port=port)
        stats: Any = client.info("commandstats")
        found[port] = (sum(int(v["calls"]) for v in stats.values()), int(client.dbsize()))
        client.close()
    return found


async def feed_entries(url: str) -> int:
    redis, keys, total = connect(url), Keys(PARTITIONS), 0
    try:
        for p in range(PARTITIONS):
            with contextlib.suppress(sync_redis.ResponseError):
                info: Any = await redis.xinfo_stream(keys.feed(p))
                total += int(info.get("entries-added") or info.get(b"entries-added") or 0)
    finally:
        await redis.aclose()
    return total


async def ingest(store: Store, plan: IngestPlan, seconds: float) -> None:
    """Bulk POST /v1/events/bulk (PER_REQUEST events each), closed loop, BULK_CONNECTIONS connections."""
    redis = connect(store.url)
    try:
        await workload.create_wallets(EventStore(redis, Keys(PARTITIONS), 35 * 24 * 3600), plan.customers)
    finally:
        await redis.aclose()
    port = free_port()
    env = tally_env(store.url) | {"TALLY_PARTITIONS": str(PARTITIONS)}
    with server(tally_argv(port), port, env) as api:
        argv = [sys.executable, "-m", "bench.ingest_loadgen", "--port", str(port), "--path", "/v1/events/bulk",
                "--header", f"x-api-key: {API_KEY}", "--tag", f"cluster{len(store.nodes)}",
                "--per-request", str(PER_REQUEST), "--bulk", "--closed", "--connections", str(BULK_CONNECTIONS),
                "--warmup", str(plan.warmup), "--duration", str(seconds), "--customers", str(plan.customers)]
        before, entries = node_counters(store), await feed_entries(store.url)
        meter = CpuMeter(api=api.pid, **{str(p): pid for p, pid in store.nodes.items()})
        meter.start()
        process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
        pin(process.pid, REDIS_CPU)
        out, _ = await asyncio.wait_for(process.communicate(), seconds + 60)
        redis_cpu = sum(meter.cpu_seconds(str(p)) for p in store.nodes)
        store.figures["ingest cpu"] = meter.stop()
        result = json.loads(out)
        added = await feed_entries(store.url) - entries
        after = node_counters(store)
    store.figures |= {"ingest": result["events_per_s"], "ingest errors": result["errors"], "ingested": added,
                      "sent": result["events_sent"], "ingest redis us": redis_cpu / max(1, added) * 1e6,
                      "ingest share": {p: after[p][0] - before[p][0] for p in store.nodes}}


async def checkpoints(redis: Any, keys: Keys) -> list[str]:
    async with redis.pipeline(transaction=False) as pipe:
        for p in range(PARTITIONS):
            pipe.get(keys.checkpoint(p))
        values = await pipe.execute()
    return [text(v) if v else ORIGIN for v in values]


async def fold(store: Store) -> None:
    """A projector (cli.wiring.run_projector, in this process) from zero until every checkpoint reaches its head."""
    keys = Keys(PARTITIONS)
    worker, poller = connect(store.url), connect(store.url)
    async with poller.pipeline(transaction=False) as pipe:
        for p in range(PARTITIONS):
            pipe.xrevrange(keys.feed(p), count=1)
        targets = [text(r[0][0]) if r else ORIGIN for r in await pipe.execute()]
    settings = Settings(partitions=PARTITIONS, batch_size=1000, trim_every_batches=0, request_log=False,
                        log_level="WARNING")
    events, before, stop = await feed_entries(store.url), node_counters(store), asyncio.Event()
    meter = CpuMeter(bench=os.getpid(), **{str(p): pid for p, pid in store.nodes.items()})
    meter.start()
    started = time.perf_counter()
    task = asyncio.create_task(run_projector(worker, settings, stop, "bench-cluster"))
    try:
        while any(is_after(h, c) for h, c in zip(targets, await checkpoints(poller, keys), strict=True)):
            assert not task.done(), f"the projector stopped: {task.exception() if task.done() else ''}"
            assert time.perf_counter() - started < FOLD_TIMEOUT, "the projector did not catch up"
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await worker.aclose()
        await poller.aclose()
    redis_cpu = sum(meter.cpu_seconds(str(p)) for p in store.nodes)
    store.figures["fold cpu"] = meter.stop()
    after = node_counters(store)
    store.figures |= {"fold": events / seconds, "fold redis us": redis_cpu / events * 1e6,
                      "fold share": {p: after[p][0] - before[p][0] for p in store.nodes},
                      "keys": {p: after[p][1] for p in store.nodes}}


def shares(counts: dict[int, int]) -> str:
    total = sum(counts.values()) or 1
    return " / ".join(f"{100 * n / total:.0f} %" for n in counts.values())


def rows(single: Store, cluster: Store) -> list[Row]:
    s, c = single.figures, cluster.figures
    return [
        Row(name=f"cluster ingest bulk ({NODES} primaries)", value=rate(c["ingest"]),
            ceiling=f"{rate(s['ingest'])} single server", ratio=ratio(c["ingest"], s["ingest"]),
            note=(f"one `tally api` (1 worker), POST /v1/events/bulk of {PER_REQUEST:,} events, closed loop, "
                  f"{BULK_CONNECTIONS} connections, {PARTITIONS} partitions; feeds +{c['ingested']:,} for "
                  f"{c['sent']:,} sent (single +{s['ingested']:,} for {s['sent']:,}); errors {c['ingest errors']} "
                  f"(single {s['ingest errors']}). Commands per shard: {shares(c['ingest share'])}. Redis CPU per "
                  f"event: {c['ingest redis us']:.1f} µs summed over the shards (single {s['ingest redis us']:.1f} "
                  f"µs): with a whole core per shard, ~{1e6 / c['ingest redis us']:,.0f} ev/s per shard, "
                  f"~{1e6 / c['ingest redis us'] * NODES:,.0f} for the {NODES} "
                  f"(single ~{1e6 / s['ingest redis us']:,.0f}). Cluster {c['ingest cpu']}; single "
                  f"{s['ingest cpu']}.")),
        Row(name=f"cluster fold ({NODES} primaries, 1 projector)", value=rate(c["fold"]),
            ceiling=f"{rate(s['fold'])} single server", ratio=ratio(c["fold"], s["fold"]),
            note=(f"cli.wiring.run_projector in-process from zero over every feed entry (what was ingested, plus the "
                  f"wallets), batch "
                  f"1000, {PARTITIONS} partitions. Commands per shard: {shares(c['fold share'])}; keys per shard: "
                  f"{shares(c['keys'])} ({sum(c['keys'].values()):,} keys). Redis CPU per event: "
                  f"{c['fold redis us']:.1f} µs summed (single {s['fold redis us']:.1f} µs). Cluster "
                  f"{c['fold cpu']}; single {s['fold cpu']}.")),
    ]


async def bench_cluster(fsync: str, plan: IngestPlan, seconds: float) -> list[Row]:
    async with stores(fsync) as (single, cluster):
        for store in (single, cluster):
            await ingest(store, plan, seconds)
            await fold(store)
    return rows(single, cluster)
