"""The live projector's per-event cost without the wall clock: a projector (cli.wiring.run_projector, in-process)
folds a stored feed in batches as small as the live ones at 5,000 ev/s (a few events, about one per touched account)
and its process CPU per event is reported. The freshness and alert benches measure the same process under an
open-loop producer, where a busy machine changes the batch sizes (and so the cost per event) from run to run; this
does not depend on the other load.

    .venv/bin/python -m bench.live_batches --events 20000 --batch 4
"""

import argparse
import asyncio
import time

from redis.asyncio import Redis

from bench import workload
from bench.fold import PARTITIONS, heads, reset_projection, time_projector
from bench.machine import own_redis
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection


async def measure(events: int, customers: int, batch: int, rounds: int) -> list[tuple[float, float]]:
    """Per round: (events a second, process CPU µs per event)."""
    out = []
    with own_redis("everysec") as server:
        redis = Redis.from_url(server.url)
        try:
            keys = Keys(PARTITIONS)
            store, projection = EventStore(redis, keys, 35 * 24 * 3600), Projection(redis, keys)
            await workload.create_wallets(store, customers)
            await workload.append_all(store, workload.mixed("live", events - customers, customers))
            targets = await heads(projection)
            for _ in range(rounds):
                await reset_projection(redis, keys, customers)
                cpu = time.process_time()
                seconds = await time_projector(server.url, keys, targets, batch, timeout=600)
                out.append((events / seconds, (time.process_time() - cpu) / events * 1e6))
        finally:
            await redis.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for rate, cpu in asyncio.run(measure(args.events, args.customers, args.batch, args.rounds)):
        print(f"batch {args.batch}: {rate:,.0f} ev/s, process CPU {cpu:.1f} µs an event")


if __name__ == "__main__":
    main()
