"""Redis CPU per event of the bulk usage script (store/lua/append_usage.lua), split into its nested commands and the
script's own work, from INFO commandstats.

    .venv/bin/python -m bench.bulk_script_cost [--rounds 6] [--events 1000] [--customers 1000]

A fresh redis-server (tally's settings, AOF everysec), a store as `tally api` creates it (so bulks take
append_usage.lua), the customers' wallets, then `rounds` bulks of `events` usage events of the fold bench's workload
through EventStore.append_each, as the bulk route appends them. Per round: the script's microseconds per event
(EVALSHA, its nested commands included) and the nested commands' own (every other command counted while it ran),
per command (a first call that finds the script not loaded runs it by EVAL: both count). The first round writes new
streams and buckets; read the later ones.
"""

import argparse
import asyncio
import time

from bench import workload
from bench.fold import PARTITIONS
from bench.machine import own_redis
from domain.events import UsageRecorded
from store.connect import connect
from store.eventstore import EventStore
from store.keys import Keys
from store.meta import ensure_store
from store.usage_append import grouped

DEDUP_TTL = 35 * 24 * 3600
OWN = {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_config|resetstat"}


async def measure(url: str, rounds: int, events: int, customers: int) -> None:
    redis = connect(url)
    try:
        store = EventStore(redis, Keys(PARTITIONS), DEDUP_TTL)
        await ensure_store(redis, store.keys)
        await store.follow_dedup_layout()
        await workload.create_wallets(store, customers)
        usage = [i for i in workload.mixed("script", 3 * rounds * events, customers) if isinstance(i[1], UsageRecorded)]
        for n in range(rounds):
            bulk = usage[n * events:(n + 1) * events]
            if not grouped(store, bulk, time.time()):
                raise RuntimeError("the bulk would not take append_usage.lua")
            await redis.config_resetstat()
            await store.append_each(bulk)
            stats = await redis.info("commandstats")
            script = sum(stats.get(k, {}).get("usec", 0) for k in ("cmdstat_evalsha", "cmdstat_eval")) / len(bulk)
            nested = {k.removeprefix("cmdstat_"): v["usec"] / len(bulk) for k, v in stats.items() if k not in OWN}
            print(f"round {n + 1}: script {script:.2f} µs an event, of it nested commands {sum(nested.values()):.2f} "
                  f"({', '.join(f'{k} {v:.2f}' for k, v in sorted(nested.items(), key=lambda kv: -kv[1]))})")
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=1000)
    args = parser.parse_args()
    with own_redis("everysec") as server:
        asyncio.run(measure(server.url, args.rounds, args.events, args.customers))


if __name__ == "__main__":
    main()
