"""Bring a store written by an older layout to this code's layout (`tally migrate`).

Layouts 1 and 2 kept ledger entries otherwise. The customer streams are the truth in every layout, so their
migration is a full replay: every account is folded from zero into a new projection generation, with its ledger
entries stored apart, the generation pointer moves and the old generation is dropped. Layout 3 named the webhook
sender's keys without a hash tag: they are renamed (store/relayout.py). Then the layout is recorded. Until then every
other tally process refuses the store; run it with all of them stopped.
"""

import time
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from projector.replay import Progress, Replayer, ReplayReport
from store.generation import live_generation
from store.keys import Keys
from store.ledger import DEFAULT_KEEP
from store.meta import LAYOUT, REPLAY_BELOW, LayoutRefused, ensure_partitions, record_layout, stored_layout
from store.relayout import move_webhook_keys


async def migrate(
    redis: Redis, keys: Keys, grace: timedelta, dedup_ttl_seconds: int, alive_ms: int, progress: Progress,
    ledger_keep: int = DEFAULT_KEEP,
) -> ReplayReport | None:
    """Rebuild the projections in this layout and record it; None when the store needs nothing (a fresh store
    is marked with this layout). Refused while a projector process is alive (seen within `alive_ms`)."""
    layout = await stored_layout(redis, keys)
    if layout is None or layout == LAYOUT:
        await record_layout(redis, keys)
        await ensure_partitions(redis, keys)
        return None
    if layout > LAYOUT:
        raise LayoutRefused(f"this store was written with layout {layout}, newer than this tally's {LAYOUT}")
    await ensure_partitions(redis, keys)
    alive: Any = await redis.zrangebyscore(keys.projectors(), int(time.time() * 1000) - alive_ms, "+inf")
    if alive:
        names = ", ".join(sorted(a.decode() if isinstance(a, bytes) else str(a) for a in alive))
        raise LayoutRefused(f"projector processes are running ({names}): stop every tally process, then migrate")
    report = ReplayReport(generation=await live_generation(redis, keys))
    if layout < REPLAY_BELOW:
        report = await Replayer(redis, keys, grace, dedup_ttl_seconds,
                                ledger_keep=ledger_keep).rebuild_all(False, progress)
    await move_webhook_keys(redis, keys)
    await record_layout(redis, keys)
    return report
