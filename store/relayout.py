"""Renames a store's keys from an older layout's names to this layout's (`tally migrate`, every process stopped).

Layout 4 moved the webhook sender's state (deliveries, queue, lease, fence, per-partition checkpoints) under one
hash tag, `{webhooks}`, so each fenced step of the sender is one script in one Redis Cluster slot. Only stores of
layout 3 or older hold the old names. A key is copied to its new name (DUMP, RESTORE with its remaining TTL: keys
of two slots, which RENAME refuses on a cluster), then the old one is deleted: a migration stopped half way leaves
old names that a second run copies again and deletes (a moved key no longer matches), so running it again is
always safe.
"""

from typing import Any

from redis.asyncio import Redis

from store.keys import Keys
from store.positions import text


async def move_webhook_keys(redis: Redis, keys: Keys) -> int:
    """Rename every webhook-sender key of layout 3 to its layout-4 name; returns how many moved."""
    moved = 0
    for pattern in keys.moved_webhook_patterns():
        found: list[Any] = [name async for name in redis.scan_iter(match=pattern, count=1000)]
        for raw in found:
            name = text(raw)
            target = keys.moved_webhook_key(name)
            if target is None:
                continue
            dumped: Any = await redis.dump(name)
            if dumped is not None:
                ttl_ms: Any = await redis.pttl(name)
                await redis.restore(target, max(int(ttl_ms), 0), dumped, replace=True)
                await redis.delete(name)
                moved += 1
    return moved
