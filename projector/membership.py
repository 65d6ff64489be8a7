"""Live projector processes, so each takes a fair share of the partitions."""

import math
import time

from redis.asyncio import Redis

from store.keys import Keys


class Membership:
    def __init__(self, redis: Redis, keys: Keys, holder: str, ttl_ms: int) -> None:
        self.redis = redis
        self.key = keys.projectors()
        self.holder = holder
        self.ttl_ms = ttl_ms
        self.members = 1

    async def heartbeat(self) -> None:
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.key, {self.holder: now_ms})
            pipe.zremrangebyscore(self.key, 0, now_ms - self.ttl_ms)
            pipe.zcard(self.key)
            *_, members = await pipe.execute()
        self.members = max(1, int(members))

    async def leave(self) -> None:
        await self.redis.zrem(self.key, self.holder)

    def share(self, partitions: int) -> int:
        return math.ceil(partitions / self.members)
