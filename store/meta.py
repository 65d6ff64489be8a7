"""Store-wide settings checked at start-up: every process must agree on the partition count and on the layout."""


import time
from typing import Any

from redis.asyncio import Redis

from domain.errors import ValidationFailed
from store.connect import connect_sync
from store.keys import Keys

LAYOUT = 4
"""The store layout this code reads and writes. 1: every snapshot held its wallets' whole ledgers (never recorded);
2: snapshots hold live state only, ledger entries are kept apart (`Keys.ledger`), every one of them;
3: as 2, but Redis keeps each wallet's newest `TALLY_LEDGER_KEEP` entries (older ones are read from the log);
4: as 3, with the webhook sender's state under one hash tag, `{webhooks}` (one Redis Cluster slot)."""

WHAT_CHANGED = {1: "ledgers inside the snapshots", 2: "every ledger entry kept in Redis",
                3: "webhook sender state without its {webhooks} hash tag"}
DEDUP_SINCE = "dedup_layout_since"
"""Meta field: from when bare ids are deduplicated in the current layout only (store/dedup.py, dedup_layout_since)."""
REPLAY_BELOW = 3
"""Layouts below this one need their projections rebuilt by `tally migrate`; from it on, keys are only renamed."""


DEFAULT_PARTITIONS = 256
"""Partitions of a new store: enough to spread evenly over the shards of a Redis Cluster (each partition is one hash
slot; 16 on 6 shards put 25 % of the load on the busiest). A store keeps the count it was created with."""


def partitions_for(url: str | None, wanted: int) -> int:
    """The partition count to run with: TALLY_PARTITIONS when set (ensure_partitions checks it against the
    store); else the count the store at `url` records; else, for a new store, DEFAULT_PARTITIONS."""
    if wanted or url is None:
        return wanted or DEFAULT_PARTITIONS
    with connect_sync(url) as client:
        recorded: Any = client.hget(Keys().meta(), "partitions")
    return int(recorded) if recorded else DEFAULT_PARTITIONS


class LayoutRefused(Exception):
    """The store was written by a layout this code must not read; the message says what to do."""


async def ensure_store(redis: Redis, keys: Keys) -> None:
    """What every process and operator command checks before touching the store: its layout, its partitions."""
    await ensure_layout(redis, keys)
    await ensure_partitions(redis, keys)


async def ensure_layout(redis: Redis, keys: Keys) -> None:
    """Record the layout in a fresh store; refuse a store another layout wrote. A store whose metadata predates
    layout versions (it records its partitions but no layout) holds snapshots with ledgers inside: layout 1."""
    layout = await stored_layout(redis, keys)
    if layout is None:
        if await redis.hsetnx(keys.meta(), "layout", LAYOUT):
            await redis.hsetnx(keys.meta(), DEDUP_SINCE, 0)  # created by this code: never held them
        layout = await stored_layout(redis, keys)
    if layout == LAYOUT:
        return
    if layout is not None and layout < LAYOUT:
        raise LayoutRefused(
            f"this store was written with layout {layout} ({WHAT_CHANGED.get(layout, 'older')}); this tally reads "
            f"layout {LAYOUT}. Stop every tally process, run `tally migrate` (it rebuilds the projections from the "
            "streams into the new layout), then start them again"
        )
    raise LayoutRefused(f"this store was written with layout {layout}, newer than this tally's {LAYOUT}: "
                        "run a tally version that knows it")


async def stored_layout(redis: Redis, keys: Keys) -> int | None:
    """The store's layout: None on a fresh store (no metadata yet), 1 when its metadata predates layouts."""
    raw: Any = await redis.hmget(keys.meta(), ["layout", "partitions"])
    layout, partitions = raw
    if layout is not None:
        return int(layout)
    return 1 if partitions is not None else None


async def record_layout(redis: Redis, keys: Keys, now: float | None = None) -> None:
    """Mark the store as written in this code's layout (a migration's last step, every process stopped): no
    process writes the previous dedup layouts from `now` on (unless the store recorded an earlier instant)."""
    await redis.hset(keys.meta(), "layout", LAYOUT)
    await redis.hsetnx(keys.meta(), DEDUP_SINCE, int(time.time() if now is None else now))


async def dedup_layout_since(redis: Redis, keys: Keys, now: float) -> float:
    """The instant (unix seconds) from which no process writes bare ids in the previous dedup layouts (store/dedup.py):
    0 for a store created by layout-3+ code. A store that records none (created or migrated by older code) records
    `now`, later than its last old-layout write: the code that wrote those layouts (layout 2) is refused at start-up,
    and a migration runs with every process stopped."""
    await redis.hsetnx(keys.meta(), DEDUP_SINCE, int(now))
    recorded: Any = await redis.hget(keys.meta(), DEDUP_SINCE)
    return float(recorded)


async def ensure_partitions(redis: Redis, keys: Keys) -> None:
    """Record the partition count on first use; refuse to run with a different one later."""
    await redis.hsetnx(keys.meta(), "partitions", keys.partitions)
    stored = int(await redis.hget(keys.meta(), "partitions") or 0)
    if stored != keys.partitions:
        raise ValidationFailed(
            f"this store was created with {stored} partitions, not {keys.partitions}; set TALLY_PARTITIONS={stored}"
        )
