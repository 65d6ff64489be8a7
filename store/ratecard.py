"""The tenant rate card in Redis: versions by id, and per partition a content-addressed copy per event name."""

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from domain.codec import decode_price, decode_prices, encode_price, encode_prices
from domain.errors import StoreUnavailable
from domain.pricing import PriceVersion
from store.keys import Keys

LOCK_TTL_MS = 5000


class MissingRateCard(LookupError):
    """A usage entry names a rate card this process cannot decode: never loaded, or not in the store."""

    def __init__(self, digest: bytes, loaded: bool) -> None:
        where = ("is not in the store (or cannot be decoded)" if loaded
                 else "was not loaded before its entry was decoded (RateCards.load)")
        super().__init__(f"rate card {digest.hex()} {where}")
        self.digest = digest


class RateCards:
    """The price versions each rate card digest names, decoded once. Each store object that decodes entries owns
    one (EventStore, Projection, the archiver) and passes it to the decode; its readers load the digests a page
    names before handing the page over, fetching only those not decoded yet. Blobs are content-addressed (keyed
    by their digest), so a decoded one never goes stale."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._prices: dict[bytes, tuple[PriceVersion, ...]] = {}
        self._absent: set[bytes] = set()

    async def load(self, partition: int, digests: Sequence[bytes | None]) -> None:
        """Decode the rate cards these digests name that are not decoded yet (one HMGET of the partition's)."""
        missing = sorted({d for d in digests if d is not None and d not in self._prices})
        if missing:
            blobs: Any = await self.redis.hmget(self.keys.rate_blobs(partition), missing)
            self.remember(dict(zip(missing, blobs, strict=True)))

    def remember(self, blobs: Mapping[bytes, bytes | None]) -> None:
        """Blobs read by someone else (the read script): an absent or undecodable one is noted as missing."""
        for digest, blob in blobs.items():
            if digest in self._prices:
                continue
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                if blob is not None:
                    self._prices[digest] = decode_prices(blob)
                    self._absent.discard(digest)
                    continue
            self._absent.add(digest)

    def prices(self, digest: bytes) -> tuple[PriceVersion, ...]:
        prices = self._prices.get(digest)
        if prices is None:
            raise MissingRateCard(digest, loaded=digest in self._absent)
        return prices


async def list_prices(redis: Redis, keys: Keys, tenant_id: str, environment_id: str) -> list[PriceVersion]:
    raw: Any = await redis.hvals(keys.rate_card(tenant_id, environment_id))
    return sorted((decode_price(v) for v in raw), key=lambda p: (p.event_name, p.effective_from, p.id))


async def add_price(redis: Redis, keys: Keys, tenant_id: str, environment_id: str, price: PriceVersion) -> None:
    """Record a version, then republish its event name's versions to every partition (one pipeline).

    A per-tenant lock keeps two concurrent creations from publishing an older list last. Each partition is written
    on its own (partitions live on different shards of a cluster: no one transaction spans them), blob before pointer
    on one connection, so a pointer never names a blob its partition lacks. The version is recorded first: a crash
    while publishing leaves some partitions on the previous card and the request unanswered; retrying it (the same
    price id) records the same version again and republishes every partition, so every step is safe to repeat.
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
        async with redis.pipeline(transaction=False) as pipe:
            for partition in range(keys.partitions):
                pipe.hsetnx(keys.rate_blobs(partition), digest, blob)
                pipe.hset(keys.rate_pointers(partition, tenant_id, environment_id), price.event_name, digest)
            await pipe.execute()
    finally:
        if await redis.get(lock_key) == token.encode():
            await redis.delete(lock_key)
