"""Freshness ceiling: follow every partition feed and move its checkpoint at once, folding nothing."""

import argparse
import asyncio
from typing import Any

from redis.asyncio import Redis

from store.keys import Keys
from store.positions import ORIGIN, text


async def follow(url: str, partitions: int) -> None:
    keys, redis = Keys(partitions), Redis.from_url(url)
    checkpoints = {keys.feed(p).encode(): keys.checkpoint(p) for p in range(partitions)}
    stored: Any = await redis.mget(list(checkpoints.values()))
    after: dict[Any, Any] = {feed: text(v) if v else ORIGIN for feed, v in zip(checkpoints, stored, strict=True)}
    while True:
        reply: Any = await redis.xread(after, count=1000, block=50)
        if not reply:
            continue
        async with redis.pipeline(transaction=False) as pipe:
            for feed, entries in reply:
                after[feed] = entries[-1][0]
                pipe.set(checkpoints[feed], entries[-1][0])
            await pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(follow(args.redis_url, args.partitions))


if __name__ == "__main__":
    main()
