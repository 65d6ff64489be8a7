"""Alert-latency ceiling: follow every partition feed, emit a marker on the alerts stream when a customer reaches
its crossing event, and move the checkpoint, folding and decoding no event.

Given, per customer, the index of the usage event that crosses its threshold (from a JSON file written by
bench.alerts), it counts each customer's feed entries (by the feed's `c` field, compared as bytes) and, at the
crossing one, XADDs {"event_type": "ceiling.crossed", "customer_id", "position": the entry's `l`} to the
partition's alerts stream in the same pipeline that moves the checkpoint: the least an alerting projector must do.
"""

import argparse
import asyncio
import json
from typing import Any

from redis.asyncio import Redis

from bench import workload
from domain.codec import encode_ref
from store.keys import Keys
from store.positions import ORIGIN, text

READY = "bench:alert-follower:ready"


async def follow(url: str, partitions: int, crossings: dict[bytes, tuple[str, int]]) -> None:
    keys, redis = Keys(partitions), Redis.from_url(url)
    feeds = {keys.feed(p).encode(): p for p in range(partitions)}
    stored: Any = await redis.mget([keys.checkpoint(p) for p in range(partitions)])
    after: dict[Any, Any] = {feed: text(v) if v else ORIGIN for feed, v in zip(feeds, stored, strict=True)}
    seen: dict[bytes, int] = {}
    await redis.set(READY, "1")
    while True:
        reply: Any = await redis.xread(after, count=1000, block=50)
        if not reply:
            continue
        async with redis.pipeline(transaction=False) as pipe:
            for feed, entries in reply:
                partition = feeds[feed]
                for _, fields in entries:
                    ref = fields[b"c"]
                    count = seen[ref] = seen.get(ref, 0) + 1
                    crossing = crossings.get(ref)
                    if crossing is not None and crossing[1] == count:
                        marker = {"event_type": "ceiling.crossed", "customer_id": crossing[0],
                                  "position": text(fields[b"l"])}
                        pipe.xadd(keys.notices(partition), {"a": json.dumps(marker)})
                after[feed] = entries[-1][0]
                pipe.set(keys.checkpoint(partition), entries[-1][0])
            await pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--crossings", required=True, help="JSON file: {customer index: crossing event index}")
    args = parser.parse_args()
    with open(args.crossings) as file:
        given: dict[str, int] = json.load(file)
    crossings = {encode_ref(workload.ref(int(i))): (workload.customer_id(int(i)), k) for i, k in given.items()}
    asyncio.run(follow(args.redis_url, args.partitions, crossings))


if __name__ == "__main__":
    main()
