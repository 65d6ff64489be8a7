"""Redis memory per usage event and per customer, measured on a fresh redis-server, and a sizing table.

Run: .venv/bin/python -m bench.memory [--customers 2000] [--events 100000]
"""

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from cli.settings import Settings
from cli.stores import free_port, start_redis_server
from cli.wiring import run_projector
from domain.events import UsageRecorded, WalletCreated
from domain.identity import AccountRef
from store.dedup import DAY, SHARDS, WEEK, week_of
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from store.projection import Projection

PARTITIONS = 16
DEDUP_DAYS = 35
IDS_A_DAY = 33  # 1,000 usage events a month


async def used(redis: Redis) -> int:
    info: Any = await redis.info("memory")
    return int(info["used_memory"])


async def caught_up(projection: Projection) -> bool:
    for partition in range(PARTITIONS):
        lag = await projection.lag(partition)
        if lag.behind:
            return False
    return True


async def measure(url: str, customers: int, events: int) -> dict[str, float]:
    redis = Redis.from_url(url)
    keys = Keys(PARTITIONS)
    store = EventStore(redis, keys, DEDUP_DAYS * 86400)
    now = datetime.now(UTC)
    refs = [AccountRef("tenant", "env", f"customer_{i:07d}") for i in range(customers)]
    base = await used(redis)
    for start in range(0, customers, 500):
        await store.append_each([
            (ref, WalletCreated(id=f"w{i}", at=now, wallet_id=f"wallet_{i}", tenant_id="tenant", environment_id="env",
                                customer_id=ref.customer_id, currency="usd", wallet_type="PRE_PAID",
                                conversion_rate=1, topup_conversion_rate=1, initial_credits=100,  # type: ignore[arg-type]
                                initial_transaction_id=f"t{i}"), None)
            for i, ref in enumerate(refs[start:start + 500], start)
        ])
    after_wallets = await used(redis)
    for start in range(0, events, 1000):
        batch = []
        for n in range(start, min(events, start + 1000)):
            ref = refs[n % customers]
            event = UsageRecorded(id=f"event_{n:012d}", at=now, event_name="api_call",
                                  external_customer_id=ref.customer_id, timestamp=now,
                                  properties={"tokens": n % 1000, "model": "large"})
            batch.append((ref, event, Dedup(scope="event", key=event.id)))
        await store.append_each(batch)
    after_events = await used(redis)
    stop = asyncio.Event()
    settings = Settings(partitions=PARTITIONS, trim_every_batches=1, request_log=False)
    task = asyncio.create_task(run_projector(redis, settings, stop, "memory-bench"))
    projection = Projection(redis, keys)
    while not await caught_up(projection):
        await asyncio.sleep(0.2)
    stop.set()
    await task
    for partition in range(PARTITIONS):
        await redis.xtrim(keys.feed(partition), minid=await projection.checkpoint(partition))
    after_fold = await used(redis)
    in_run = sum(await _sizes(redis, _buckets(keys, ref, [week_of(time.time())]))) / events
    snapshot_bytes = await _average(redis, [keys.snapshot(ref) for ref in refs[:200]])
    dedup_bytes, dedup_freed = await _dedup_bytes(redis, keys)
    await redis.aclose()
    retained = (after_fold - after_wallets - customers * snapshot_bytes) / events
    return {
        "per_customer_wallet_events": (after_wallets - base) / customers,
        "per_customer_snapshot": snapshot_bytes,
        "per_event_with_feed_untrimmed": (after_events - after_wallets) / events,
        "per_event_retained": retained,
        "per_event_dedup": dedup_bytes,
        "per_event_dedup_freed_on_delete": dedup_freed,
        "per_event_stream_entry": retained - in_run,
    }


async def _sizes(redis: Redis, names: list[str]) -> list[int]:
    return [await redis.memory_usage(name, samples=0) or 0 for name in names]


async def _average(redis: Redis, names: list[str]) -> float:
    sizes = await _sizes(redis, names)
    return sum(sizes) / max(1, len(sizes))


def _buckets(keys: Keys, ref: AccountRef, weeks: range | list[int]) -> list[str]:
    return [name for shard in range(SHARDS) for name in keys.dedup_buckets(ref, shard, weeks)]


async def _dedup_bytes(redis: Redis, keys: Keys, customers: int = 100) -> tuple[float, float]:
    """Customers sending IDS_A_DAY ids a day for DEDUP_DAYS days (the store's clock moved a day at a time): their
    buckets' MEMORY USAGE per id, and how much used_memory drops per id when they are deleted (expiry entries too)."""
    refs = [AccountRef("tenant", "env", f"dedup_customer_{i:04d}") for i in range(customers)]
    start = week_of(time.time()) * WEEK + 4 * DAY  # next Monday 00:00 UTC
    now = [float(start)]
    store = EventStore(redis, keys, DEDUP_DAYS * DAY, clock=lambda: now[0])
    for day in range(DEDUP_DAYS):
        now[0] = start + day * DAY + 3600
        at = datetime.fromtimestamp(now[0], UTC)
        ids = [(ref, f"evt_{ref.customer_id}_{day:02d}_{n:04d}") for ref in refs for n in range(IDS_A_DAY)]
        await store.append_each([(ref, UsageRecorded(id=i, at=at, event_name="api_call", timestamp=at,
                                                     external_customer_id=ref.customer_id), Dedup("event", i))
                                 for ref, i in ids])
    weeks = range(week_of(start), week_of(now[0]) + 1)
    buckets, count = [b for ref in refs for b in _buckets(keys, ref, weeks)], IDS_A_DAY * DEDUP_DAYS * customers
    size = sum(await _sizes(redis, buckets)) / count
    before = await used(redis)
    for first in range(0, len(buckets), 500):
        await redis.delete(*buckets[first:first + 500])
    return size, (before - await used(redis)) / count


def sizing(figures: dict[str, float]) -> str:
    customers, per_month = 1_000_000, 1_000
    events_month = customers * per_month
    rows = [
        ("customers: wallet history + snapshot", customers * (figures["per_customer_wallet_events"]
                                                             + figures["per_customer_snapshot"])),
        ("one month of usage history (customer streams)", events_month * figures["per_event_stream_entry"]),
        (f"dedup window ({DEDUP_DAYS} days of event ids, 3.5 more on average: buckets expire by the week)",
         events_month * (DEDUP_DAYS + 3.5) / 30 * figures["per_event_dedup"]),
    ]
    lines = ["| what | bytes | GiB |", "|---|---|---|"]
    lines += [f"| {name} | {size:,.0f} | {size / 2**30:,.1f} |" for name, size in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        server = start_redis_server(Path(data), port, fsync="no")
        try:
            figures = asyncio.run(measure(f"redis://127.0.0.1:{port}/0", args.customers, args.events))
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"customers={args.customers} events={args.events}")
    for name, value in figures.items():
        print(f"{name}: {value:,.0f} bytes")
    print(sizing(figures))


if __name__ == "__main__":
    main()
