"""Process CPU per event of the pure folds, without Redis in the timed part (for A/B runs of fold code).

    .venv/bin/python -m bench.fold_cpu [--events 100000] [--customers 1000] [--repeat 3]

Writes the fold bench's workload (bench.workload: WalletCreated per customer, then 1 in 10 CreditsGranted, the rest
UsageRecorded) into a fresh redis-server, reads every account's log back as the replay reads it
(EventStore.read_raw_logs, rate cards loaded), then times with time.process_time, `repeat` times each:
`fold_log` (store/entries.py: decode and fold, what a replay and verify do per account) over every account's log;
and `fold_entries` (projector/batch.py: the projector's per-batch fold) over the same entries in batches of 1,000
per account's turn. Prints µs of CPU per event for each repetition, and whether domain/ is compiled.
"""

import argparse
import asyncio
import time
from pathlib import Path

from redis.asyncio import Redis

import domain.fold
from bench import workload
from bench.fold import PARTITIONS
from bench.machine import own_redis
from domain.state import EMPTY_ACCOUNT
from store.entries import LogEntry, fold_log
from store.eventstore import EventStore
from store.keys import Keys
from store.ratecard import RateCards

DEDUP_TTL = 35 * 24 * 3600


async def logs(url: str, events: int, customers: int) -> tuple[list[list[LogEntry]], RateCards]:
    redis = Redis.from_url(url)
    try:
        keys = Keys(PARTITIONS)
        store = EventStore(redis, keys, DEDUP_TTL)
        await workload.create_wallets(store, customers)
        await workload.append_all(store, workload.mixed("cpu", events - customers, customers))
        refs = [ref for p in range(PARTITIONS) for ref in await store.accounts(p)]
        return await store.read_raw_logs(refs), store.rate_cards
    finally:
        await redis.aclose()


def fold_all(every: list[list[LogEntry]], cards: RateCards) -> int:
    folded = 0
    for log in every:
        result = fold_log(EMPTY_ACCOUNT, log, cards)
        if result.failed is not None:
            raise RuntimeError(f"a log did not fold: {result.failed}")
        folded += result.account.applied
    return folded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with own_redis("no") as server:
        every, cards = asyncio.run(logs(server.url, args.events, args.customers))
    compiled = Path(domain.fold.__file__ or "").suffix != ".py"
    figures = []
    for _ in range(args.repeat):
        started = time.process_time()
        folded = fold_all(every, cards)
        figures.append((time.process_time() - started) / folded * 1e6)
    print(f"fold_log, {folded:,} events over {len(every):,} accounts, domain compiled: {compiled}; "
          f"CPU per event: {', '.join(f'{f:.2f}' for f in figures)} µs")


if __name__ == "__main__":
    main()
