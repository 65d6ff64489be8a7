"""Bulk usage: events with bare ids grouped per partition and tenant into one append_usage.lua call each, so a bulk
of 1,000 events costs a few script calls of a few arguments an event instead of 1,000 calls of ~20 arguments.

Each event is still deduplicated and appended alone (the script does per event what append.lua does for one event
with a bare id); taken only when every item is usage with a bare id (a customer's events keep their order) and the
store cannot hold the previous dedup layouts (store/dedup.py; the script looks up this layout alone). Everything
else takes append.lua as before.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from domain.codec import encode_event, encode_ref
from domain.events import AnyEvent, UsageRecorded
from domain.identity import AccountRef
from store.dedup import DIGEST_BYTES, bucket_expiry, bucket_weeks, buckets_of, digest_v1, week_of
from store.positions import text

if TYPE_CHECKING:
    from store.eventstore import Dedup, EventStore

EVENTS_PER_CALL = 200
"""At most this many events per script call: a call holds Redis for its events only (tens of µs each)."""

Item = tuple[AccountRef, AnyEvent, "Dedup | None"]


def grouped(store: "EventStore", items: Sequence[Item], now: float) -> dict[tuple[int, str, str], list[int]]:
    """The items' indexes per (partition, tenant, environment) when append_usage.lua can take them all (usage with
    bare ids, the previous dedup layouts not looked up); else none (taking some would reorder a customer's events)."""
    groups: dict[tuple[int, str, str], list[int]] = {}
    if now < store.previous_dedup_until:
        return groups
    for index, (ref, event, dedup) in enumerate(items):
        if not (isinstance(event, UsageRecorded) and dedup is not None and dedup.bare):
            return {}
        key = (store.keys.partition_of(ref), ref.tenant_id, ref.environment_id)
        groups.setdefault(key, []).append(index)
    return groups


def usage_calls(store: "EventStore", items: Sequence[Item], groups: dict[tuple[int, str, str], list[int]],
                now: float) -> list[tuple[list[int], list[Any], list[Any]]]:
    """append_usage.lua's calls: (item indexes, KEYS, ARGV) of at most EVENTS_PER_CALL events each."""
    window, calls = store.dedup_ttl_seconds, []
    expiry, weeks = bucket_expiry(week_of(now), window), bucket_weeks(now, window)
    for (partition, tenant, environment), indexes in groups.items():
        for start in range(0, len(indexes), EVENTS_PER_CALL):
            chunk = indexes[start:start + EVENTS_PER_CALL]
            keys: list[Any] = [store.keys.feed(partition), store.keys.accounts(partition),
                               store.keys.rate_pointers(partition, tenant, environment)]
            args: list[Any] = [expiry, len(weeks)]
            for index in chunk:
                ref, event, dedup = items[index]
                assert isinstance(event, UsageRecorded) and dedup is not None
                name = digest_v1(dedup.scope, dedup.key)
                keys.append(store.keys.log(ref))
                keys.extend(buckets_of(store.keys, ref, name, weeks))
                args.extend((encode_ref(ref), event.event_name, encode_event(event), name[:DIGEST_BYTES]))
            calls.append((chunk, keys, args))
    return calls


async def append_usage(store: "EventStore", items: Sequence[Item]) -> dict[int, str]:
    """Append the items if append_usage.lua can take them all: item index -> its entry id ('' for a duplicate);
    else nothing ({})."""
    now = store.clock()
    calls = usage_calls(store, items, grouped(store, items, now), now)
    if not calls:
        return {}
    replies = await store.scripts.append_usage.run_each([(keys, args) for _, keys, args in calls], store.replicated)
    found: dict[int, str] = {}
    for (chunk, _, _), reply in zip(calls, replies, strict=True):
        found.update(zip(chunk, (text(entry) for entry in reply), strict=True))
    return found
