"""Compact dedup markers: a bare id (usage event id, clock event id) costs a 12-byte digest in a per-customer hash of
the ISO week (UTC, from Monday 00:00) it arrived in, one of SHARDS by the digest's first byte; the hash expires as a
whole one window after its week ends.

A retry is looked up in its shard of every week still inside the window (and next week's, for a writer whose clock
runs up to a day ahead): it is found whatever day it arrives and whatever timestamp it carries. An id first accepted
at time t is refused until at least t + window and at most the end of t's week + window (35 to 42 days by default).
Weeks and shards keep a lookup to at most 7 buckets for 35 days (day buckets would need 37). A bucket stays a
listpack (about 20 bytes an id, measured) while it holds at most `hash-max-listpack-entries` ids (128 upstream):
with 4 shards a customer sending up to ~70 ids a day on average (4 x 128 / 7 = 73, less the spread between shards)
stays there; above, a bucket turns into a hashtable (~90 bytes an id), still exact.

The digest is the first 12 bytes of blake2b-128 of the scoped id; two different ids of one customer share it with
probability at most n²/2^97 (n ids in the window): about 10^-23 for a customer's 1,155 ids of a month at 33 a day,
about 10^-17 summed over a million such customers, 10^-17 for one customer with a million ids in the window. Never
in practice, and unlike a probabilistic filter's designed false positives, not a rate anybody can observe.

Upgrading from 16-byte digests in 8 shards (`Keys.dedup_buckets_v1`, written by the previous version): those
buckets are looked up too (the 16-byte digest in its shard of the same weeks), never written, and expire by
themselves, so a store upgraded mid-window never counts a retry twice.

Idempotency keys keep a value (the original transaction) and stay one key each with a TTL (`Keys.dedup`); a bare
id's key in that layout (written by earlier versions still) is read as well.

Both previous layouts were written by layout-2 code only (store/meta.py), which every later process refuses at
start-up. So they are looked up only while the store can still hold them: the store records, in its metadata, the
instant from which no process writes them (`meta.dedup_layout_since`: 0 for a store created by layout-3+ code, which
never held them; the migration's or first start's time for an older store). An id marked in a previous layout
before that instant is a duplicate until at most that instant + window; a day more covers a writer whose clock ran a
day ahead. After that, the lookups (7 buckets, a second digest and a marker GET per append) are skipped.
"""

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from redis.asyncio import Redis

from domain.identity import AccountRef
from store.keys import Keys, component
from store.positions import text

DAY = 86_400
WEEK = 7 * DAY
MONDAY = 3 * DAY
"""1970-01-01 was a Thursday: weeks start on the Monday three days before it."""
SHARDS = 4
DIGEST_BYTES = 12
V1_SHARDS = 8
V1_DIGEST_BYTES = 16


def digest_v1(scope: str, key: str) -> bytes:
    """The 16-byte name of a scoped id in the previous version's buckets (blake2b-128)."""
    scoped = f"{component(scope)}:{component(key)}".encode()
    return hashlib.blake2b(scoped, digest_size=V1_DIGEST_BYTES).digest()


def digest(scope: str, key: str) -> bytes:
    """The 12-byte name of a scoped id inside its customer's buckets: the first bytes of its 16-byte name."""
    return digest_v1(scope, key)[:DIGEST_BYTES]


def week_of(now: float) -> int:
    """Week number of a unix time: weeks since the one holding 1970-01-01, each from Monday 00:00 UTC."""
    return int((now + MONDAY) // WEEK)


def bucket_weeks(now: float, window: int) -> list[int]:
    """This week first (where a new id goes), then next week's if a clock a day ahead is in it, then every earlier
    week whose bucket may still hold an id first seen less than `window` seconds ago."""
    return list(_weeks(week_of(now), week_of(now + DAY), week_of(now - window)))


@lru_cache(maxsize=16)
def _weeks(this: int, ahead: int, oldest: int) -> tuple[int, ...]:
    return (this, *range(ahead, this, -1), *range(this - 1, oldest - 1, -1))


def bucket_expiry(week: int, window: int) -> int:
    """Unix time at which a bucket of `week` expires: one window after the week ends."""
    return (week + 1) * WEEK - MONDAY + window


def previous_layouts_until(since: float, window: int) -> float:
    """Unix time until which a store that writes only this layout since `since` (0: always) may still hold a bare id
    of the previous layouts inside its window: the lookups of those are needed before it, never after."""
    return 0.0 if since <= 0 else since + window + DAY


def bucket_keys(keys: Keys, ref: AccountRef, name: bytes, now: float, window: int, previous: bool = True
                ) -> list[str]:
    """The buckets to look the id up in, `name` being its 16-byte `digest_v1`: this layout's (the one to write its
    12-byte digest to first), then (with `previous`) as many of the previous layout's, the same weeks in order."""
    weeks = bucket_weeks(now, window)
    buckets = buckets_of(keys, ref, name, weeks)
    return buckets + keys.dedup_buckets_v1(ref, name[0] % V1_SHARDS, weeks) if previous else buckets


def buckets_of(keys: Keys, ref: AccountRef, name: bytes, weeks: list[int]) -> list[str]:
    """This layout's buckets of `weeks` (`bucket_weeks`) to look the id named `name` (its `digest_v1`) up in."""
    return keys.dedup_buckets(ref, name[0] % SHARDS, weeks)


def digest_args(name: bytes, previous: bool = True) -> bytes:
    """ARGV 3 of append.lua for a bare id: its 12-byte digest, then (with `previous`) its 16-byte one (`name`)."""
    return name[:DIGEST_BYTES] + name if previous else name[:DIGEST_BYTES]


async def seen_bare(redis: Redis, keys: Keys, ref: AccountRef, scope: str, key: str, now: float,
                    window: int, previous: bool = True) -> str | None:
    """'' when the bare id is in a bucket of the window, the old marker's value when only that holds it (looked up
    with `previous` only), else None."""
    name = digest_v1(scope, key)
    buckets = bucket_keys(keys, ref, name, now, window, previous)
    half = len(buckets) // 2 if previous else len(buckets)
    async with redis.pipeline(transaction=False) as pipe:
        if previous:
            pipe.get(keys.dedup(ref, scope, key))
        for n, bucket in enumerate(buckets):
            pipe.hexists(bucket, name[:DIGEST_BYTES] if n < half else name)
        replies: Sequence[Any] = await pipe.execute()
    marker, found = (replies[0], replies[1:]) if previous else (None, replies)
    if any(found):
        return ""
    return None if marker is None else text(marker)
