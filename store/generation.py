"""Which projection generation is live: `tally replay` builds the next one and moves this pointer."""

from typing import Any

from redis.asyncio import Redis

from store.keys import Keys


async def live_generation(redis: Redis, keys: Keys) -> int:
    value: Any = await redis.get(keys.generation_pointer())
    return int(value) if value else 1


async def switch_generation(redis: Redis, keys: Keys, generation: int) -> None:
    await redis.set(keys.generation_pointer(), generation)

