"""Bulk usage: events with bare ids grouped per partition and tenant into one append_usage.lua call each, so a bulk
of 1,000 events costs a few script calls of a few arguments an event instead of 1,000 calls of ~20 arguments.

Each event is still deduplicated and appended alone (the script answers per event what append.lua answers for one
event with a bare id); taken only when every item is usage with a bare id (a customer's events keep their order) and
the store cannot hold the previous dedup layouts (store/dedup.py; the script looks up this layout alone). Everything
else takes append.lua as before. Within a call a customer's log key and encoded ref go once, and its bucket keys once
per shard its ids fall in (a group); the ids of a group of several events are looked up together. An id its customer
sent earlier in the same call is a duplicate whatever the first one was, so it is answered here and not sent.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from domain.codec import encode_event, encode_ref
from domain.events import AnyEvent, UsageRecorded
from domain.identity import AccountRef
from store.dedup import DIGEST_BYTES, SHARDS, bucket_expiry, bucket_weeks, digest_v1, week_of
from store.positions import text

if TYPE_CHECKING:
    from store.eventstore import Dedup, EventStore
    from store.keys import Keys

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
                now: float) -> tuple[list[tuple[list[int], list[Any], list[Any]]], list[int]]:
    """append_usage.lua's calls, (item indexes, KEYS, ARGV) of at most EVENTS_PER_CALL events each; and the items
    that repeat an id of their customer earlier in the same call (duplicates, sent to no call)."""
    window, calls = store.dedup_ttl_seconds, []
    repeats: list[int] = []
    expiry, weeks = bucket_expiry(week_of(now), window), bucket_weeks(now, window)
    for (partition, tenant, environment), indexes in groups.items():
        head = [store.keys.feed(partition), store.keys.accounts(partition),
                store.keys.rate_pointers(partition, tenant, environment)]
        for start in range(0, len(indexes), EVENTS_PER_CALL):
            sent, keys, args = _call(store.keys, items, indexes[start:start + EVENTS_PER_CALL], weeks, repeats)
            calls.append((sent, head + keys, [expiry, len(weeks), *args]))
    return calls, repeats


def _call(keys: "Keys", items: Sequence[Item], chunk: list[int], weeks: list[int], repeats: list[int]
          ) -> tuple[list[int], list[Any], list[Any]]:
    """One call's items sent, KEYS from 4 and ARGV from 3, built in one pass: each customer's log and encoded ref
    once, each group's (a customer and a shard) buckets once, its events' count and (more than one) digests, then
    per event its customer, its group, event name, encoded event and digest. A repeat goes to `repeats`."""
    customers: dict[AccountRef, int] = {}
    groups: dict[tuple[int, int], tuple[int, list[bytes]]] = {}
    sent: list[int] = []
    logs: list[Any] = []
    refs: list[Any] = []
    buckets: list[Any] = []
    events: list[Any] = []
    for index in chunk:
        ref, event, dedup = items[index]
        assert isinstance(event, UsageRecorded) and dedup is not None
        digest = digest_v1(dedup.scope, dedup.key)[:DIGEST_BYTES]
        customer = customers.get(ref)
        if customer is None:
            customer = customers[ref] = len(customers) + 1
            logs.append(keys.log(ref))
            refs.append(encode_ref(ref))
        shard = digest[0] % SHARDS
        found = groups.get((customer, shard))
        if found is None:
            group, digests = groups[(customer, shard)] = (len(groups) + 1, [digest])
            buckets.extend(keys.dedup_buckets(ref, shard, weeks))
        elif digest in found[1]:
            repeats.append(index)
            continue
        else:
            group, digests = found
            digests.append(digest)
        sent.append(index)
        events.extend((customer, group, event.event_name, encode_event(event), digest))
    sections: list[Any] = [len(logs), *refs, len(groups)]
    for _, digests in groups.values():
        sections.append(len(digests))
        if len(digests) > 1:
            sections.extend(digests)
    return sent, logs + buckets, sections + events


async def append_usage(store: "EventStore", items: Sequence[Item]) -> dict[int, str]:
    """Append the items if append_usage.lua can take them all: item index -> its entry id ('' for a duplicate);
    else nothing ({})."""
    now = store.clock()
    calls, repeats = usage_calls(store, items, grouped(store, items, now), now)
    if not calls:
        return {}
    replies = await store.scripts.append_usage.run_each([(keys, args) for _, keys, args in calls], store.replicated)
    found = dict.fromkeys(repeats, "")
    for (chunk, _, _), reply in zip(calls, replies, strict=True):
        found.update(zip(chunk, (text(entry) for entry in reply), strict=True))
    return found
