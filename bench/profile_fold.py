"""Where the projector's fold spends its time: the fold bench's workload folded from zero under cProfile.

    .venv/bin/python -m bench.profile_fold [--events 100000] [--customers 1000] [--top 30]

Prints the functions with the most own time (tottime) and the most cumulative time, for the whole projector
(cli.wiring.run_projector in-process, feed trimming off), and the fold rate under the profiler (slower than without).
"""

import argparse
import asyncio
import cProfile
import io
import pstats
import tempfile
from pathlib import Path

from redis.asyncio import Redis

from bench import workload
from bench.fold import PARTITIONS, heads, time_projector
from cli.stores import free_port, start_redis_server
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection


async def profiled(url: str, events: int, customers: int, batch: int) -> tuple[cProfile.Profile, float]:
    redis = Redis.from_url(url)
    try:
        keys = Keys(PARTITIONS)
        store = EventStore(redis, keys, 35 * 24 * 3600)
        await workload.create_wallets(store, customers)
        await workload.append_all(store, workload.mixed("profile", events - customers, customers))
        targets = await heads(Projection(redis, keys))
        profile = cProfile.Profile()
        profile.enable()
        seconds = await time_projector(url, keys, targets, batch, timeout=600)
        profile.disable()
        return profile, events / seconds
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        server = start_redis_server(Path(data), port, fsync="no")
        try:
            profile, rate = asyncio.run(profiled(f"redis://127.0.0.1:{port}/0", args.events, args.customers,
                                                 args.batch))
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"{args.events:,} events over {args.customers:,} customers folded at {rate:,.0f} ev/s under cProfile")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
        print(f"\n--- by {order} ---")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20000])


if __name__ == "__main__":
    main()
