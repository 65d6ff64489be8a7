"""Retention floors a replay holds: the feed is not trimmed at or above them until the replay's switch.

Each floor is set with a TTL (so a replay that dies does not pin the feed for ever) and renewed every third of
it while the replay runs, however long that is; the replay removes them at its end.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from store.keys import Keys

FLOOR_TTL_S = 3600.0


class RetentionFloors:
    def __init__(self, redis: Redis, keys: Keys, ttl_s: float = FLOOR_TTL_S) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.held: dict[int, str] = {}

    async def hold(self, partition: int, position: str) -> None:
        self.held[partition] = position
        await self.redis.set(self.keys.retention_floor(partition), position, px=self.ttl_ms)

    async def renew(self) -> None:
        for partition, position in list(self.held.items()):
            await self.redis.set(self.keys.retention_floor(partition), position, px=self.ttl_ms)

    async def release(self) -> None:
        for partition in list(self.held):
            await self.redis.delete(self.keys.retention_floor(partition))
        self.held.clear()

    async def _keep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.ttl_ms / 3000)
            if not stop.is_set():
                with contextlib.suppress(RedisError):  # tried again a third of the TTL later
                    await self.renew()

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator["RetentionFloors"]:
        """Renew the floors held while the block runs; remove every floor when it ends, however it ends."""
        stop = asyncio.Event()
        keeper = asyncio.create_task(self._keep(stop))
        try:
            yield self
        finally:
            stop.set()
            await keeper
            await self.release()
