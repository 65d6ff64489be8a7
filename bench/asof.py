"""What an as-of balance costs: one wallet with N log entries, the last 100 not folded by the projector yet. As of
its last entry and of an entry in that tail (the snapshot + the entries since), of its middle and of its first
entry (the whole log read, folded from zero up to the moment), against a real-time read of the same wallet in the
same run (the ceiling). In process, no HTTP.

    .venv/bin/python -m bench.asof [--sizes 1000,10000] [--repeat 15]
"""

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial

from redis.asyncio import Redis

from api.accounts import Accounts
from api.asof import read_balance_as_of
from api.auth import Principal
from api.balances import read_balance
from bench import workload
from bench.fold import PARTITIONS, heads, time_projector
from bench.machine import SUBJECT_CPU, own_redis, pin
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from store.ratecard import add_price

TAIL = 100  # entries appended after the projector caught up


async def p50_ms(call: Callable[[], Awaitable[object]], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def one_size(url: str, entries: int, repeat: int) -> None:
    redis = Redis.from_url(url)
    try:
        await redis.flushdb()
        store = EventStore(redis, Keys(PARTITIONS), 3600)
        await add_price(redis, store.keys, workload.TENANT, workload.ENVIRONMENT, workload.USAGE_PRICE)
        await workload.create_wallets(store, 1)
        await workload.append_all(store, workload.per_customer("asof", entries - 1, 1))
        await time_projector(url, store.keys, await heads(Projection(redis, store.keys)), 1000, timeout=300)
        await workload.append_all(store, workload.per_customer("tail", TAIL, 1))  # not folded: the read's tail
        positions = [position for position, _ in await store.read_log(workload.ref(0))]
        service, caller = Accounts(store), Principal(workload.TENANT, workload.ENVIRONMENT)
        wallet = workload.wallet_id(0)
        ceiling = await p50_ms(lambda: read_balance(wallet, caller, service, None, False), repeat)
        print(f"{len(positions):>7} entries  real-time read p50 {ceiling:8.2f} ms")
        cases = [("last", positions[-1]), ("in the tail", positions[-TAIL // 2]),
                 ("middle", positions[len(positions) // 2]), ("first", positions[0])]
        for label, position in cases:
            took = await p50_ms(partial(read_balance_as_of, wallet, caller, service, None, None, position), repeat)
            print(f"{'':>7}          as-of {label:<11} p50 {took:8.2f} ms  ({took / ceiling:6.1f}x the real-time read;"
                  f" {1000 * (took - ceiling) / len(positions):5.1f} µs per log entry)")
    finally:
        await redis.aclose()


async def main(sizes: list[int], repeat: int) -> None:
    pin(0, SUBJECT_CPU)
    with own_redis("everysec") as server:
        for entries in sizes:
            await one_size(server.url, entries, repeat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")], args.repeat))
