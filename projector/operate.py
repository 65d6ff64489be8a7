"""Operator views over the store: lag per partition and verification of snapshots against the log."""

import random
import time

from domain.identity import AccountRef
from store.eventstore import EventStore
from store.generation import live_generation
from store.projection import Lag, Projection
from store.verify import VerifyReport, verify_accounts, verify_all


async def on_live_generation(store: EventStore | None, projection: Projection) -> None:
    generation = await live_generation(projection.redis, projection.keys)
    projection.use_generation(generation)
    if store is not None:
        store.use_generation(generation)


async def lag_table(projection: Projection) -> list[Lag]:
    await on_live_generation(None, projection)
    return [await projection.lag(p) for p in range(projection.keys.partitions)]


def age_ms(lag: Lag, now_ms: int | None = None) -> int | None:
    if lag.oldest_unfolded_ms is None:
        return None
    return max(0, (now_ms if now_ms is not None else int(time.time() * 1000)) - lag.oldest_unfolded_ms)


async def verify(
    store: EventStore, projection: Projection, ref: AccountRef | None = None, sample: int | None = None
) -> VerifyReport:
    """One account, a random sample of `sample` accounts, or all of them."""
    await on_live_generation(store, projection)
    if ref is not None:
        return await verify_accounts(store, projection, [ref])
    if sample is not None:
        refs = [r for p in range(store.keys.partitions) for r in await store.accounts(p)]
        return await verify_accounts(store, projection, random.sample(refs, min(sample, len(refs))))
    return await verify_all(store, projection)
