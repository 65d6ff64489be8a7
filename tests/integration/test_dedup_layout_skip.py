"""The previous dedup layouts (16-byte buckets, one-key markers of bare ids: store/dedup.py) are looked up only while
the store may hold them: never in a store this code created, and in an older store until its recorded instant plus
the window and a day. A retry of an id of this layout stays a duplicate across the whole window either way."""

import time

from redis.asyncio import Redis

from store.dedup import DAY, V1_SHARDS, WEEK, bucket_expiry, digest_v1, previous_layouts_until, week_of
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from store.meta import DEDUP_SINCE, LAYOUT, dedup_layout_since, ensure_store, record_layout
from tests.integration.test_compact_dedup import MONDAY, REF, WINDOW, send, store_at, usage
from tests.support.dedup_clock import Clock

KEYS = Keys(16)


async def plant_previous(redis: Redis, event_id: str, week: int) -> None:
    """`event_id` marked as layout-2 code marked it: a 16-byte digest in its week's bucket and a one-key marker."""
    name = digest_v1("event", event_id)
    bucket = KEYS.dedup_buckets_v1(REF, name[0] % V1_SHARDS, [week])[0]
    await redis.hset(bucket, name, "")
    await redis.expireat(bucket, bucket_expiry(week, WINDOW))
    await redis.set(KEYS.dedup(REF, "event", event_id + "-m"), "|1-1", ex=WINDOW)


async def following(redis: Redis, now: float) -> tuple[EventStore, Clock]:
    store, clock = store_at(redis, now)
    await store.follow_dedup_layout()
    return store, clock


def test_the_rule() -> None:
    assert previous_layouts_until(0, WINDOW) == 0
    assert previous_layouts_until(1_000, WINDOW) == 1_000 + WINDOW + DAY


async def test_a_store_this_code_created_never_looks_the_previous_layouts_up(aredis: Redis) -> None:
    await ensure_store(aredis, KEYS)
    assert await aredis.hget(KEYS.meta(), DEDUP_SINCE) == b"0"
    store, _ = await following(aredis, MONDAY + 100)
    assert store.previous_dedup_until == 0
    await plant_previous(aredis, "planted", week_of(MONDAY))  # cannot happen in such a store: proves the skip
    assert await send(store, "planted") == "appended"
    assert await store.seen(REF, Dedup("event", "planted-m")) is None
    assert await send(store, "planted-m") == "appended"


async def test_a_retry_is_a_duplicate_across_the_whole_window_without_the_previous_layouts(aredis: Redis) -> None:
    await ensure_store(aredis, KEYS)
    store, clock = store_at(aredis, MONDAY + 10)
    await store.follow_dedup_layout()
    assert await send(store, "e-1") == "appended"
    bulk = await store.append_each([(REF, usage(i), Dedup("event", i)) for i in ("e-2", "e-2", "e-1")])
    assert [r.status for r in bulk] == ["appended", "duplicate", "duplicate"]
    for later in (1, DAY, WEEK + 5, WINDOW - 1, WEEK + WINDOW - 11):
        clock.now = MONDAY + 10 + later
        assert await send(store, "e-1") == "duplicate"
        assert await store.seen(REF, Dedup("event", "e-2")) == ""
    clock.now = MONDAY + WEEK + WINDOW
    assert await send(store, "e-1") == "appended"
    assert [event.id for _, event in await store.read_log(REF)] == ["e-1", "e-2", "e-1"]


async def test_an_older_store_records_its_first_start_and_looks_them_up_until_the_window_has_passed(
        aredis: Redis) -> None:
    await aredis.hset(KEYS.meta(), mapping={"layout": LAYOUT, "partitions": 16})  # created before the field
    await ensure_store(aredis, KEYS)
    since = MONDAY + 50
    store, clock = await following(aredis, since)
    assert await aredis.hget(KEYS.meta(), DEDUP_SINCE) == str(since).encode()
    assert store.previous_dedup_until == since + WINDOW + DAY
    await plant_previous(aredis, "old", week_of(since))  # written just before the first start of this code
    await aredis.expire(KEYS.dedup(REF, "event", "old-m"), WINDOW + 2 * DAY)  # (outlives the window: the rule shows)
    for now in (since, since + WINDOW - 1, since + WINDOW + DAY - 1):
        clock.now = now
        assert await send(store, "old") == "duplicate"
        assert await store.seen(REF, Dedup("event", "old-m")) == "|1-1"
        assert await send(store, "old-m") == "duplicate"
    clock.now = since + WINDOW + DAY
    assert await store.seen(REF, Dedup("event", "old-m")) is None
    assert await send(store, "old-m") == "appended"
    later, _ = await following(aredis, since + 3 * WEEK)  # another process, started later: the same instant
    assert later.previous_dedup_until == since + WINDOW + DAY


async def test_a_migration_records_when_it_ran_unless_an_earlier_instant_is_recorded(aredis: Redis) -> None:
    await record_layout(aredis, KEYS, now=1_000)
    assert await dedup_layout_since(aredis, KEYS, now=time.time()) == 1_000
    await record_layout(aredis, KEYS, now=2_000)
    assert await dedup_layout_since(aredis, KEYS, now=time.time()) == 1_000


async def test_a_store_until_follow_is_called_always_looks_them_up(aredis: Redis) -> None:
    await ensure_store(aredis, KEYS)
    store, _ = store_at(aredis, MONDAY + 100)
    await plant_previous(aredis, "kept", week_of(MONDAY))
    assert await send(store, "kept") == "duplicate"
