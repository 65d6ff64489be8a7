"""Bytes per usage event id kept for the dedup window, by MEMORY USAGE on a real redis-server: a realistic customer
(33 ids a day, about 1,000 a month) over 35 days costs at most 24 bytes per id
(measured ~20: a 12-byte digest and listpack overhead, 4 shards a week)."""

import time

from redis.asyncio import Redis

from domain.identity import AccountRef
from store.dedup import DAY, SHARDS, WEEK, week_of
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from tests.support.dedup_clock import Clock, usage_at

PER_DAY, DAYS, CEILING = 33, 35, 24


async def bytes_per_id(redis: Redis, customer: str, per_day: int, days: int) -> tuple[float, set[str]]:
    """Ingest `per_day` ids a day for `days` days (the store's clock moved a day at a time); then the memory
    of the customer's week buckets per id, and their encodings."""
    keys, ref = Keys(16), AccountRef("tenant", "env", customer)
    start = week_of(time.time()) * WEEK + 4 * DAY  # next Monday 00:00 UTC
    clock = Clock(start)
    store = EventStore(redis, keys, DAYS * DAY, clock=clock)
    for day in range(days):
        clock.now = start + day * DAY + 3600
        ids = [f"evt_{customer}_{day:02d}_{n:04d}" for n in range(per_day)]
        results = await store.append_each([(ref, usage_at(i, clock.now, ref), Dedup("event", i)) for i in ids])
        assert {r.status for r in results} == {"appended"}
    weeks = range(week_of(start), week_of(start + (days - 1) * DAY) + 1)
    buckets = [key for shard in range(SHARDS) for key in keys.dedup_buckets(ref, shard, weeks)]
    sizes = [await redis.memory_usage(bucket, samples=0) or 0 for bucket in buckets]
    encodings = {(await redis.object("encoding", bucket)).decode() for bucket in buckets}
    return sum(sizes) / (per_day * days), encodings


async def test_a_usage_event_id_costs_at_most_24_bytes_for_the_window(aredis: Redis) -> None:
    per_id, encodings = await bytes_per_id(aredis, "cust_memory", PER_DAY, DAYS)
    print(f"dedup: {per_id:.1f} bytes per id ({PER_DAY} ids a day over {DAYS} days, buckets {encodings})")
    assert encodings == {"listpack"}
    assert per_id <= CEILING
