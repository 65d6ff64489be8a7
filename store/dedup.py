"""Compact dedup markers: a bare id (usage event id, clock event id) costs a 16-byte digest in a per-customer hash of
the ISO week (UTC, from Monday 00:00) it arrived in, one of SHARDS by the digest's first byte; the hash expires as a
whole one window after its week ends.

A retry is looked up in its shard of every week still inside the window (and next week's, for a writer whose clock
runs up to a day ahead): it is found whatever day it arrives and whatever timestamp it carries. An id first accepted
at time t is refused until at least t + window and at most the end of t's week + window (35 to 42 days by default).
Weeks and shards keep a lookup to at most 7 buckets for 35 days (day buckets would need 37), and a customer sending
up to ~146 ids a day keeps each bucket within hash-max-listpack-entries (128), about 26 bytes an id.

The digest is blake2b-128 of the scoped id; two different ids of one customer share it with probability about
n²/2^129 (n ids in the window), below 10^-28 for a million ids: never in practice, and unlike a probabilistic
filter's designed false positives, not a rate anybody can observe.

Idempotency keys keep a value (the original transaction) and stay one key each with a TTL (`Keys.dedup`); a bare
id's key in that layout (written by earlier versions) is still read, so a store upgraded mid-window never counts a
retry twice; it is never written again and expires by itself.
"""

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from domain.identity import AccountRef
from store.keys import Keys, component
from store.positions import text

DAY = 86_400
WEEK = 7 * DAY
MONDAY = 3 * DAY
"""1970-01-01 was a Thursday: weeks start on the Monday three days before it."""
SHARDS = 8
DIGEST_BYTES = 16


def digest(scope: str, key: str) -> bytes:
    """The 16-byte name of a scoped id inside its customer's buckets."""
    scoped = f"{component(scope)}:{component(key)}".encode()
    return hashlib.blake2b(scoped, digest_size=DIGEST_BYTES).digest()


def week_of(now: float) -> int:
    """Week number of a unix time: weeks since the one holding 1970-01-01, each from Monday 00:00 UTC."""
    return int((now + MONDAY) // WEEK)


def bucket_weeks(now: float, window: int) -> list[int]:
    """This week first (where a new id goes), then next week's if a clock a day ahead is in it, then every earlier
    week whose bucket may still hold an id first seen less than `window` seconds ago."""
    this, ahead, oldest = week_of(now), week_of(now + DAY), week_of(now - window)
    return [this, *range(ahead, this, -1), *range(this - 1, oldest - 1, -1)]


def bucket_expiry(week: int, window: int) -> int:
    """Unix time at which a bucket of `week` expires: one window after the week ends."""
    return (week + 1) * WEEK - MONDAY + window


def bucket_keys(keys: Keys, ref: AccountRef, name: bytes, now: float, window: int) -> list[str]:
    """The buckets to look `name` (a digest) up in, the one to write it to first."""
    return keys.dedup_buckets(ref, name[0] % SHARDS, bucket_weeks(now, window))


async def seen_bare(redis: Redis, keys: Keys, ref: AccountRef, scope: str, key: str, now: float,
                    window: int) -> str | None:
    """'' when the bare id is in a bucket of the window, the old marker's value when only that holds it, else None."""
    name = digest(scope, key)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.dedup(ref, scope, key))
        for bucket in bucket_keys(keys, ref, name, now, window):
            pipe.hexists(bucket, name)
        replies: Sequence[Any] = await pipe.execute()
    if any(replies[1:]):
        return ""
    return None if replies[0] is None else text(replies[0])
