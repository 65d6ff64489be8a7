"""Live projector processes, so each takes a fair share of the partitions; one log line when this one's share
changes."""

import logging
import math
import time

from redis.asyncio import Redis

from store.keys import Keys

log = logging.getLogger("tally.projector")


class Membership:
    def __init__(self, redis: Redis, keys: Keys, holder: str, ttl_ms: int) -> None:
        self.redis = redis
        self.key = keys.projectors()
        self.holder = holder
        self.ttl_ms = ttl_ms
        self.members = 1
        self.reported: list[int] = []

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

    def report_held(self, held: list[int], partitions: int) -> None:
        """One info line when the set of partitions this projector holds changes (each lease change is a debug
        line): `projector holds 16/16 partitions (1 live projectors): 0-15`."""
        if held != self.reported:
            self.reported = held
            log.info("projector holds %d/%d partitions (%d live projectors): %s", len(held), partitions, self.members,
                     spans(held))


def spans(partitions: list[int]) -> str:
    """`0-3,6,8-9`: ascending partition numbers, short enough for one log line."""
    runs: list[list[int]] = []
    for partition in partitions:
        if runs and runs[-1][1] == partition - 1:
            runs[-1][1] = partition
        else:
            runs.append([partition, partition])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"
