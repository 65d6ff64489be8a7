"""Where the projector's fold spends its time: the fold bench's workload folded from zero under cProfile.

    .venv/bin/python -m bench.profile_fold [--events 100000] [--customers 1000] [--top 30] [--collector]

Prints the functions with the most own time (tottime) and the most cumulative time, for the whole projector
(cli.wiring.run_projector in-process, feed trimming off), and the fold rate under the profiler (slower than without).
cProfile cannot see the cyclic garbage collector; `--collector` runs the projector without it and prints the process
CPU per event and the collector's share of it (gc.callbacks), by generation.
"""

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from bench import workload
from bench.fold import PARTITIONS, heads, time_projector
from cli.stores import free_port, start_redis_server
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection


class Collections:
    """CPU seconds the cyclic collector spent, and how many collections, per generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds, self.count, self._started = [0.0, 0.0, 0.0], [0, 0, 0], 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds[info["generation"]] += time.process_time() - self._started
            self.count[info["generation"]] += 1


async def collected(url: str, events: int, customers: int, batch: int) -> str:
    keys, targets = await _workload(url, events, customers)
    seen = Collections()
    gc.callbacks.append(seen)
    started = time.process_time()
    try:
        await time_projector(url, keys, targets, batch, timeout=600)
    finally:
        gc.callbacks.remove(seen)
    cpu = (time.process_time() - started) / events * 1e6
    return (f"process CPU {cpu:.1f} µs an event, of it the collector {sum(seen.seconds) / events * 1e6:.2f} µs; "
            f"collections by generation {seen.count}, seconds {[round(s, 3) for s in seen.seconds]}")


async def _workload(url: str, events: int, customers: int) -> tuple[Keys, list[str]]:
    redis = Redis.from_url(url)
    try:
        keys = Keys(PARTITIONS)
        store = EventStore(redis, keys, 35 * 24 * 3600)
        await workload.create_wallets(store, customers)
        await workload.append_all(store, workload.mixed("profile", events - customers, customers))
        return keys, await heads(Projection(redis, keys))
    finally:
        await redis.aclose()


async def profiled(url: str, events: int, customers: int, batch: int) -> tuple[cProfile.Profile, float]:
    keys, targets = await _workload(url, events, customers)
    profile = cProfile.Profile()
    profile.enable()
    seconds = await time_projector(url, keys, targets, batch, timeout=600)
    profile.disable()
    return profile, events / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--collector", action="store_true", help="the collector's share instead of cProfile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        server = start_redis_server(Path(data), port, fsync="no")
        url = f"redis://127.0.0.1:{port}/0"
        try:
            if args.collector:
                print(asyncio.run(collected(url, args.events, args.customers, args.batch)))
                return
            profile, rate = asyncio.run(profiled(url, args.events, args.customers, args.batch))
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
