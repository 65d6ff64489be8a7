"""Bulk usage a partition at a time (store/usage_append.py, append_usage.lua) writes what one append.lua call per
event writes: the same customer streams, feed entries, account sets and dedup buckets (with their expiry), the
same answers (a repeated id, within the call or from before, is a duplicate), the rate card attached alike."""

from typing import Any

import pytest
from redis.asyncio import Redis

from domain.codec import decode_ref
from domain.identity import AccountRef
from store import usage_append
from store.dedup import DAY, WEEK, week_of
from store.eventstore import Appended, Dedup, EventStore
from store.keys import Keys
from tests.integration.test_compact_dedup import MONDAY, WINDOW, usage
from tests.support.dedup_clock import Clock

REFS = [AccountRef("tenant", "env", f"cust_{n}") for n in range(12)] + [AccountRef("other", "env", "cust_0")]


def stores(redis: Redis) -> tuple[EventStore, EventStore]:
    """One store appending per event (it looks the previous layouts up), one a partition at a time."""
    per_event = EventStore(redis, Keys(4, prefix="per"), WINDOW, clock=Clock(MONDAY + 100))
    grouped = EventStore(redis, Keys(4, prefix="grp"), WINDOW, clock=Clock(MONDAY + 100))
    grouped.previous_dedup_until = 0
    return per_event, grouped


async def state(redis: Redis, keys: Keys) -> dict[str, Any]:
    """Every key of the store, prefix stripped, with its expiry: streams as their entries' fields, a feed entry's
    `l` and `pl` as the place of its customer's stream entry they name (a feed's entries sorted by customer: only a
    customer's order is kept, one partition's customers may interleave otherwise), hashes and sets as they are."""
    names = sorted([raw.decode() async for raw in redis.scan_iter(match=f"{keys.prefix}:*")])
    kinds = {name: (await redis.type(name)).decode() for name in names}
    streams = {name: await redis.xrange(name) for name in names if kinds[name] == "stream"}
    found: dict[str, Any] = {}
    for name in names:
        if kinds[name] == "stream":
            value: Any = [sorted(_placed(fields, keys, streams).items()) for _, fields in streams[name]]
            value.sort(key=lambda entry: (dict(entry)[b"c"], dict(entry)[b"l"]) if entry[0][0] == b"c" else ())
        elif kinds[name] == "hash":
            value = await redis.hgetall(name)
        else:
            value = sorted(await redis.smembers(name))
        found[name.split(":", 1)[1]] = (kinds[name], value, await redis.expiretime(name))
    return found


def _placed(fields: dict[bytes, Any], keys: Keys, streams: dict[str, Any]) -> dict[bytes, Any]:
    if b"c" not in fields:
        return fields
    log = streams[keys.log(decode_ref(fields[b"c"]))]
    n = next(n for n, (_, logged) in enumerate(log) if logged[b"e"] == fields[b"e"])
    assert fields[b"l"] == log[n][0] and fields[b"pl"] == (log[n - 1][0] if n else b"0-0")
    return {**fields, b"l": n, b"pl": n - 1}


def items(ids: list[tuple[int, str]]) -> list[tuple[AccountRef, Any, Dedup | None]]:
    return [(REFS[n], usage(i, MONDAY, REFS[n]), Dedup("event", i)) for n, i in ids]


@pytest.mark.parametrize("per_call", [usage_append.EVENTS_PER_CALL, 2])
async def test_grouped_appends_write_what_one_call_per_event_writes(aredis: Redis, monkeypatch: pytest.MonkeyPatch,
                                                                     per_call: int) -> None:
    monkeypatch.setattr(usage_append, "EVENTS_PER_CALL", per_call)
    per_event, grouped = stores(aredis)
    for store in (per_event, grouped):
        for n in (0, 12):  # a rate card pointer for the event name in two of the partitions' tenants
            await aredis.hset(store.keys.rate_pointers(store.keys.partition_of(REFS[n]), REFS[n].tenant_id,
                                                       REFS[n].environment_id), "api_call", b"digest-" + bytes([n]))
    first = items([(n % 13, f"e-{n}") for n in range(30)] + [(3, "e-3"), (4, "x"), (4, "x"), (5, "e-4")])
    second = items([(3, "e-3"), (12, "e-12"), (7, "new"), (0, "e-0"), (0, "e-13")])
    answers = [[await store.append_each(batch) for batch in (first, second)] for store in (per_event, grouped)]
    assert _same_shape(answers[0], answers[1])
    assert await state(aredis, per_event.keys) == await state(aredis, grouped.keys)
    statuses = [r.status for r in answers[1][0]]
    assert statuses[30:] == ["duplicate", "appended", "duplicate", "appended"]
    assert [r.status for r in answers[1][1]] == ["duplicate", "duplicate", "appended", "duplicate", "duplicate"]


def _same_shape(a: list[list[Appended]], b: list[list[Appended]]) -> bool:
    """The answers differ only in the entry ids (two stores, two clocks of Redis)."""
    return [[(r.status, len(r.positions), r.seen) for r in batch] for batch in a] == \
        [[(r.status, len(r.positions), r.seen) for r in batch] for batch in b]


async def test_a_mixed_bulk_or_a_store_that_looks_the_previous_layouts_up_appends_per_event(
        aredis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    _, grouped = stores(aredis)
    calls: list[int] = []
    original = grouped.scripts.append_usage.run_each

    async def counted(batch: Any, wait: Any = None) -> list[Any]:
        calls.append(len(batch))
        return await original(batch, wait)

    monkeypatch.setattr(grouped.scripts.append_usage, "run_each", counted)
    mixed = [*items([(0, "a"), (1, "b")]), (REFS[2], usage("c", MONDAY, REFS[2]), None)]
    assert [r.status for r in await grouped.append_each(mixed)] == ["appended"] * 3
    assert calls == []
    grouped.previous_dedup_until = float("inf")
    assert [r.status for r in await grouped.append_each(items([(0, "a"), (3, "d")]))] == ["duplicate", "appended"]
    assert calls == []
    grouped.previous_dedup_until = 0
    assert [r.status for r in await grouped.append_each(items([(0, "a"), (3, "e")]))] == ["duplicate", "appended"]
    assert len(calls) == 1  # one round trip, one script call per partition in it


HOSTILE = [AccountRef("tenant", "env", "a:b"), AccountRef("tenant", "env", "a"),
           AccountRef("tenant", "env", "{p001}x"), AccountRef("tenant:env", "x", "c"),
           AccountRef("tenant", "env:x", "c"), AccountRef("tenant", "env", "z" * 255)]


async def test_hostile_ids_are_kept_apart_as_one_call_per_event_keeps_them(aredis: Redis) -> None:
    """Separators and hash tags in customer ids, tenants whose components join alike, the longest id, event ids with
    ':' and braces: grouped appends write what per-event appends write, and no two of these accounts share a key."""
    per_event, grouped = stores(aredis)
    ids = ["e:1", "{p000}", "e:1:", "", "x" * 255]
    batch = [(ref, usage(i, MONDAY, ref), Dedup("event", i)) for ref in HOSTILE for i in ids]
    assert usage_append.grouped(grouped, batch, grouped.clock())  # taken a partition at a time, not per event
    answers = [await store.append_each(batch) for store in (per_event, grouped)]
    assert _same_shape([answers[0]], [answers[1]])
    assert [r.status for r in answers[1]] == ["appended"] * len(batch)  # the same id of another account is its own
    assert await state(aredis, per_event.keys) == await state(aredis, grouped.keys)
    logs = {grouped.keys.log(ref) for ref in HOSTILE}
    assert len(logs) == len(HOSTILE)
    for ref in HOSTILE:
        assert len(await aredis.xrange(grouped.keys.log(ref))) == len(ids)
    again = await grouped.append_each(batch)
    assert [r.status for r in again] == ["duplicate"] * len(batch)


async def test_many_events_of_a_customer_across_weeks_write_what_one_call_per_event_writes(aredis: Redis) -> None:
    """Customers with many events in a call (several per shard: the script looks each group's digests up together
    and writes them in one step), ids first sent in earlier weeks of the window (found in older buckets), repeats
    within the call, and a bucket whose expiry is already later than this week's (kept, as EXPIREAT GT)."""
    per_event, grouped = stores(aredis)
    weeks = [f"w0-{n}" for n in range(40)]
    first = items([(n % 3, i) for n, i in enumerate(weeks)])
    for store in (per_event, grouped):
        await store.append_each(first)
        assert isinstance(store.clock, Clock)
        store.clock.now += 2 * WEEK + DAY  # the first ids are in a bucket two weeks back now
        later = store.keys.dedup_buckets(REFS[1], 0, [week_of(store.clock.now)])[0]
        await aredis.hset(later, "placeholder", "")
        await aredis.expireat(later, int(store.clock.now) + 100 * WEEK)
    again = items([(0, "w0-0"), (0, "w2-a"), (0, "w2-b"), (1, "w0-1"), (0, "w2-a"), (1, "w2-c"), (0, "w0-3"),
                   (2, "w2-d"), *[(1, f"w2-{n}") for n in range(30)], (1, "w0-4"), (1, "w2-5"), (4, "w2-e")])
    answers = [await store.append_each(again) for store in (per_event, grouped)]
    assert _same_shape([answers[0]], [answers[1]])
    assert [r.status for r in answers[1][:8]] == ["duplicate", "appended", "appended", "duplicate", "duplicate",
                                                  "appended", "duplicate", "appended"]
    assert [r.status for r in answers[1][-3:]] == ["duplicate", "duplicate", "appended"]
    assert await state(aredis, per_event.keys) == await state(aredis, grouped.keys)
