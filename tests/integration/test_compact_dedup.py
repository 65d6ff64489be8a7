"""Compact dedup (store/dedup.py) on a real Redis: a retried usage event id is refused whichever day it arrives
within the window and whatever timestamp it carries; markers of the older one-key layout still count; idempotency
keys keep their value; buckets of the previous layout (16-byte digests, 8 shards) still count. The store's clock is
moved instead of waiting (buckets expire relative to real time)."""

import time

import pytest
from redis.asyncio import Redis

from domain.events import UsageRecorded
from domain.identity import AccountRef
from store.dedup import DAY, SHARDS, V1_SHARDS, WEEK, bucket_expiry, digest, digest_v1, week_of
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from tests.support.dedup_clock import Clock, usage_at

WINDOW = 35 * DAY
MONDAY = week_of(time.time()) * WEEK + 4 * DAY  # the next Monday 00:00 UTC (every bucket's expiry in the future)
REF = AccountRef("tenant", "env", "cust_dedup")


def usage(event_id: str, at: float = MONDAY, ref: AccountRef = REF) -> UsageRecorded:
    return usage_at(event_id, at, ref)


def store_at(redis: Redis, now: float, window: int = WINDOW) -> tuple[EventStore, Clock]:
    clock = Clock(now)
    return EventStore(redis, Keys(16), window, clock=clock), clock


def bucket_of(event_id: str, week: int) -> str:
    name = digest("event", event_id)
    return Keys(16).dedup_buckets(REF, name[0] % SHARDS, [week])[0]


async def send(store: EventStore, event_id: str, timestamp: float = MONDAY, ref: AccountRef = REF) -> str:
    appended = await store.append(ref, [usage(event_id, timestamp, ref)], Dedup("event", event_id))
    return appended.status


@pytest.mark.parametrize("first", [MONDAY, MONDAY + WEEK - 1], ids=["week-start", "a-second-before-the-next"])
async def test_a_retry_within_the_window_is_a_duplicate_whatever_day_and_timestamp(aredis: Redis, first: int) -> None:
    store, clock = store_at(aredis, first)
    assert await send(store, "e-1") == "appended"
    retries = []
    for later in (1, DAY, 7 * DAY + 5, WINDOW - 1):
        clock.now = first + later
        retries.append(await send(store, "e-1", timestamp=first - later))  # another timestamp: the same event
        assert await store.seen(REF, Dedup("event", "e-1")) == ""
    assert retries == ["duplicate"] * 4
    assert len(await store.read_log(REF)) == 1


async def test_a_retry_just_after_the_week_turns_is_a_duplicate(aredis: Redis) -> None:
    store, clock = store_at(aredis, MONDAY - 1)
    assert await send(store, "late") == "appended"
    clock.now = MONDAY + 1
    assert await send(store, "late") == "duplicate"
    assert await aredis.exists(bucket_of("late", week_of(MONDAY - 1))) == 1


async def test_an_id_is_remembered_until_its_week_ends_plus_the_window_and_no_longer(aredis: Redis) -> None:
    store, clock = store_at(aredis, MONDAY + 10)
    assert await send(store, "e-2") == "appended"
    clock.now = MONDAY + WEEK + WINDOW - 1  # the end of its arrival week plus the window, less a second
    assert await send(store, "e-2") == "duplicate"
    clock.now = MONDAY + WEEK + WINDOW
    assert await store.seen(REF, Dedup("event", "e-2")) is None
    assert await send(store, "e-2") == "appended"  # past the window a reused id is a new event


async def test_a_writer_whose_clock_runs_ahead_is_seen_by_one_behind(aredis: Redis) -> None:
    ahead, _ = store_at(aredis, MONDAY + 5)
    behind, _ = store_at(aredis, MONDAY - 5)
    assert await send(ahead, "skew") == "appended"
    assert await send(behind, "skew") == "duplicate"
    assert await behind.seen(REF, Dedup("event", "skew")) == ""


async def test_bulk_retries_across_days_are_duplicates_and_new_ids_are_not(aredis: Redis) -> None:
    store, clock = store_at(aredis, MONDAY + 100)
    first = [f"b-{n}" for n in range(10)]
    results = await store.append_each([(REF, usage(i), Dedup("event", i)) for i in first])
    assert {r.status for r in results} == {"appended"}
    clock.now += 3 * DAY
    again = first + [f"b-new-{n}" for n in range(5)]
    results = await store.append_each([(REF, usage(i), Dedup("event", i)) for i in again * 2])
    assert [r.status for r in results] == ["duplicate"] * 10 + ["appended"] * 5 + ["duplicate"] * 15
    assert len(await store.read_log(REF)) == 15


async def test_a_bucket_expires_as_a_whole_one_window_after_its_week(aredis: Redis) -> None:
    first, second, third = [i for i in (f"x-{n}" for n in range(200)) if digest("event", i)[0] % SHARDS == 0][:3]
    store, _ = store_at(aredis, MONDAY + 100)
    bucket = bucket_of(first, week_of(MONDAY))
    assert await send(store, first) == "appended"  # a bucket just created gets its expiry (GT alone would not)
    assert await aredis.expiretime(bucket) == bucket_expiry(week_of(MONDAY), WINDOW) == MONDAY + WEEK + WINDOW
    longer, _ = store_at(aredis, MONDAY + 3 * DAY, window=WINDOW + DAY)
    assert await send(longer, second) == "appended"
    assert await send(store, third) == "appended"  # a shorter window never shortens a bucket's life
    assert await aredis.expiretime(bucket) == bucket_expiry(week_of(MONDAY), WINDOW + DAY)
    assert await aredis.hlen(bucket) == 3


async def test_scopes_and_customers_never_share_an_id(aredis: Redis) -> None:
    store, _ = store_at(aredis, MONDAY)
    other = AccountRef("tenant", "env", "cust_other")
    assert await send(store, "same") == "appended"
    assert await send(store, "same", ref=other) == "appended"
    clock_event = await store.append(REF, [usage("same")], Dedup("clock", "same"))
    assert clock_event.status == "appended"
    assert len(await store.read_log(REF)) == 2


async def test_markers_of_the_older_one_key_layout_still_deduplicate(aredis: Redis) -> None:
    keys = Keys(16)
    store, _ = store_at(aredis, MONDAY)
    for old in ("old-1", "old-2"):  # what the per-key layout wrote: value '|' first position, TTL the window
        await aredis.set(keys.dedup(REF, "event", old), f"|1-{old[-1]}", ex=WINDOW)
    single = await store.append(REF, [usage("old-1")], Dedup("event", "old-1"))
    bulk = await store.append_each([(REF, usage(i), Dedup("event", i)) for i in ("old-2", "new-1")])
    assert (single.status, single.seen) == ("duplicate", "|1-1")
    assert [r.status for r in bulk] == ["duplicate", "appended"]
    assert await store.seen(REF, Dedup("event", "old-2")) == "|1-2"
    assert await aredis.exists(keys.dedup(REF, "event", "new-1")) == 0  # new ids never use the old layout
    assert [event.id for _, event in await store.read_log(REF)] == ["new-1"]


async def test_an_idempotency_key_keeps_its_value_for_the_window(aredis: Redis) -> None:
    keys = Keys(16)
    store, clock = store_at(aredis, MONDAY)
    dedup = Dedup("topup", "order-7", "fingerprint:wtx_1", wallet_id="wallet_1")
    first = await store.append(REF, [usage("topup-event")], dedup)
    clock.now += 20 * DAY
    retry = await store.append(REF, [usage("other-event")], dedup)
    assert retry.status == "duplicate" and retry.seen == f"fingerprint:wtx_1|{first.positions[0]}"
    assert await store.seen(REF, dedup) == retry.seen
    assert WINDOW - 60 <= await aredis.ttl(keys.dedup(REF, "topup", "order-7", "wallet_1")) <= WINDOW


async def test_buckets_of_the_previous_layout_still_deduplicate_until_they_expire(aredis: Redis) -> None:
    keys = Keys(16)
    store, clock = store_at(aredis, MONDAY + WEEK + 100)
    for old, week in (("v1-a", week_of(MONDAY)), ("v1-b", week_of(MONDAY + WEEK))):  # as the previous version wrote
        name = digest_v1("event", old)
        bucket = keys.dedup_buckets_v1(REF, name[0] % V1_SHARDS, [week])[0]
        await aredis.hset(bucket, name, "")
        await aredis.expireat(bucket, bucket_expiry(week, WINDOW))
    single = await store.append(REF, [usage("v1-a")], Dedup("event", "v1-a"))
    bulk = await store.append_each([(REF, usage(i), Dedup("event", i)) for i in ("v1-b", "v2-c", "v2-c")])
    assert single.status == "duplicate"
    assert [r.status for r in bulk] == ["duplicate", "appended", "duplicate"]
    assert await store.seen(REF, Dedup("event", "v1-b")) == ""
    assert await store.seen(REF, Dedup("event", "v1-x")) is None
    new = digest("event", "v2-c")
    assert len(new) == 12 and await aredis.hexists(bucket_of("v2-c", week_of(clock.now)), new)
    v1_new = keys.dedup_buckets_v1(REF, digest_v1("event", "v2-c")[0] % V1_SHARDS, [week_of(clock.now)])[0]
    assert await aredis.exists(v1_new) == 0  # the previous layout is never written
    assert [event.id for _, event in await store.read_log(REF)] == ["v2-c"]
    clock.now = MONDAY + WEEK + WINDOW  # the first week has left the window: its old bucket is no longer read
    assert await send(store, "v1-a") == "appended"
