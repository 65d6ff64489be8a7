"""Which projection generation is live: `tally replay` builds the next one and moves this pointer."""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from store.keys import Keys


async def live_generation(redis: Redis, keys: Keys) -> int:
    value: Any = await redis.get(keys.generation_pointer())
    return int(value) if value else 1


async def switch_generation(redis: Redis, keys: Keys, generation: int) -> None:
    await redis.set(keys.generation_pointer(), generation)


async def follow_generation(
    redis: Redis, keys: Keys, current: int, switch: Callable[[int], None], stop: asyncio.Event, interval_s: float = 1.0
) -> None:
    """Call `switch` whenever the live generation changes, polling every `interval_s` until `stop` is set."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        if stop.is_set():
            return
        with contextlib.suppress(RedisError):
            generation = await live_generation(redis, keys)
            if generation != current:
                current = generation
                switch(generation)
