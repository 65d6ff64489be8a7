"""Compact dedup markers: a bare id (usage event id, clock event id) costs a 16-byte digest in a per-customer hash
of the UTC day it arrived, and the hash expires as a whole one window after that day ends.

A retry is looked up in every day bucket still inside the window (and tomorrow's, for a writer whose clock runs a
little ahead), so it is found whatever day it arrives and whatever timestamp it carries: an id first accepted at
time t is refused until at least t + window and at most the end of its UTC day + window. The digest is blake2b-128
of the scoped id; two different ids of one customer share it with probability about n²/2^129 (n ids in the window),
below 10^-29 for a million ids: never in practice, unlike a probabilistic filter's designed false positives.

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
DIGEST_BYTES = 16


def digest(scope: str, key: str) -> bytes:
    """The 16-byte name of a scoped id inside its customer's buckets."""
    scoped = f"{component(scope)}:{component(key)}".encode()
    return hashlib.blake2b(scoped, digest_size=DIGEST_BYTES).digest()


def day_of(now: float) -> int:
    """UTC day number (days since 1970-01-01) of a unix time."""
    return int(now // DAY)


def bucket_days(now: float, window: int) -> list[int]:
    """Today first (where a new id goes), then tomorrow, then every earlier day whose bucket may still hold an id
    first seen less than `window` seconds ago (a bucket of day d lives until (d + 1) * DAY + window)."""
    today, oldest = day_of(now), day_of(now - window)
    return [today, today + 1, *range(today - 1, oldest - 1, -1)]


def bucket_expiry(day: int, window: int) -> int:
    """Unix time at which the bucket of `day` expires: one window after the day ends."""
    return (day + 1) * DAY + window


def bucket_keys(keys: Keys, ref: AccountRef, now: float, window: int) -> list[str]:
    return [keys.dedup_day(ref, day) for day in bucket_days(now, window)]


async def seen_bare(redis: Redis, keys: Keys, ref: AccountRef, scope: str, key: str, now: float,
                    window: int) -> str | None:
    """'' when the bare id is in a bucket of the window, the old marker's value when only that holds it, else None."""
    name = digest(scope, key)
    buckets = bucket_keys(keys, ref, now, window)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.dedup(ref, scope, key))
        for bucket in buckets:
            pipe.hexists(bucket, name)
        replies: Sequence[Any] = await pipe.execute()
    if any(replies[1:]):
        return ""
    return None if replies[0] is None else text(replies[0])
