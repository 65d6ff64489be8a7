"""The tenant rate card in Redis: versions by id, and per partition a content-addressed copy per event name."""

import asyncio
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from domain.codec import decode_price, encode_price, encode_prices
from domain.errors import StoreUnavailable
from domain.pricing import PriceVersion
from store.entries import known_prices, remember_blobs
from store.keys import Keys

LOCK_TTL_MS = 5000


async def load_rate_cards(redis: Redis, keys: Keys, partition: int, digests: Sequence[bytes | None]) -> None:
    """Make sure the rate cards these digests name are decoded (each is fetched once per process)."""
    missing = sorted({d for d in digests if d is not None and not known_prices(d)})
    if missing:
        blobs: Any = await redis.hmget(keys.rate_blobs(partition), missing)
        remember_blobs(dict(zip(missing, blobs, strict=True)))


async def list_prices(redis: Redis, keys: Keys, tenant_id: str, environment_id: str) -> list[PriceVersion]:
    raw: Any = await redis.hvals(keys.rate_card(tenant_id, environment_id))
    return sorted((decode_price(v) for v in raw), key=lambda p: (p.event_name, p.effective_from, p.id))


async def add_price(redis: Redis, keys: Keys, tenant_id: str, environment_id: str, price: PriceVersion) -> None:
    """Record a version, then republish its event name's versions to every partition in one MULTI.

    A per-tenant lock keeps two concurrent creations from publishing an older list last.
    """
    lock_key = keys.rate_card_lock(tenant_id, environment_id)
    token = os.urandom(8).hex()
    for _ in range(100):
        if await redis.set(lock_key, token, nx=True, px=LOCK_TTL_MS):
            break
        await asyncio.sleep(0.02)
    else:
        raise StoreUnavailable("the rate card is locked by another writer; try again")
    try:
        await redis.hset(keys.rate_card(tenant_id, environment_id), price.id, encode_price(price))
        versions = tuple(
            p for p in await list_prices(redis, keys, tenant_id, environment_id) if p.event_name == price.event_name
        )
        blob = encode_prices(versions)
        digest = hashlib.sha256(blob).digest()[:16]
        async with redis.pipeline(transaction=True) as pipe:
            for partition in range(keys.partitions):
                pipe.hsetnx(keys.rate_blobs(partition), digest, blob)
                pipe.hset(keys.rate_pointers(partition, tenant_id, environment_id), price.event_name, digest)
            await pipe.execute()
    finally:
        if await redis.get(lock_key) == token.encode():
            await redis.delete(lock_key)
