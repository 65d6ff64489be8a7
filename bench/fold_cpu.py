"""Process CPU per event of the pure folds, without Redis in the timed part (for A/B runs of fold code).

    .venv/bin/python -m bench.fold_cpu [--events 100000] [--customers 1000] [--repeat 3] [--batch 1000]

Writes the fold bench's workload (bench.workload: WalletCreated per customer, then 1 in 10 CreditsGranted, the rest
UsageRecorded) into a fresh redis-server, reads every account's log back as the replay reads it
(EventStore.read_raw_logs, rate cards loaded), then times with time.process_time, `repeat` times each:
`fold_log` (store/entries.py: decode and fold, what a replay and verify do per account) over every account's log;
and `fold_batch` (projector/batch.py: the projector's fold of one feed batch: decode, fold, ledger writes, notices,
clock schedule, the snapshot encoded) over every partition's feed read as the projector reads it, in batches of
`batch`, each account's decoded snapshot carried to its next batch as the projector's cache does. Prints µs of CPU
per event for each repetition, and whether domain/ is compiled.
"""

import argparse
import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from redis.asyncio import Redis

import domain.fold
from bench import workload
from bench.fold import PARTITIONS
from bench.machine import own_redis
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT, Account
from projector.batch import fold_batch, group_by_account
from store.connect import connect
from store.entries import LogEntry, fold_log
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import ORIGIN
from store.projection import FeedEntry, Projection, Snapshot
from store.ratecard import RateCards

DEDUP_TTL = 35 * 24 * 3600
GRACE = timedelta(hours=1)  # cli/settings.py period_grace_seconds


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


async def feed_batches(url: str, partitions: int, batch: int) -> list[list[FeedEntry]]:
    """Every partition's feed as the projector reads it (store.projection read_feed), in batches of `batch`."""
    redis = connect(url)
    try:
        projection, batches = Projection(redis, Keys(partitions)), []
        for partition in range(partitions):
            after = ORIGIN
            while entries := await projection.read_feed(partition, after, batch, None):
                batches.append(entries)
                after = entries[-1].position
        return batches
    finally:
        await redis.aclose()


def fold_batches(batches: list[list[FeedEntry]], cards: RateCards) -> int:
    """`fold_batch` over every batch in turn, each account's snapshot carried from one batch to the next (decoded,
    as the projector's snapshot cache keeps it); notices, ledger writes and clock schedules included."""
    accounts: dict[AccountRef, Account] = {}
    folded = 0
    for entries in batches:
        groups = group_by_account(entries)
        snapshots = [Snapshot(ORIGIN, None, None, accounts.get(ref)) for ref in groups]
        result = fold_batch(groups, snapshots, GRACE, cards)
        if result.quarantines:
            raise RuntimeError(f"a batch did not fold: {result.quarantines[0]}")
        accounts.update((write.ref, write.account) for write in result.writes if write.account is not None)
        folded += result.applied
    return folded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000, help="feed entries per fold_batch call")
    args = parser.parse_args()
    with own_redis("no") as server:
        every, cards = asyncio.run(logs(server.url, args.events, args.customers))
        batches = asyncio.run(feed_batches(server.url, PARTITIONS, args.batch))
    compiled = Path(domain.fold.__file__ or "").suffix != ".py"
    folds: list[tuple[str, Callable[[], int]]] = [
        ("fold_log", lambda: fold_all(every, cards)), ("fold_batch", lambda: fold_batches(batches, cards))]
    for name, fold in folds:
        figures = []
        for _ in range(args.repeat):
            started = time.process_time()
            folded = fold()
            figures.append((time.process_time() - started) / folded * 1e6)
        print(f"{name}, {folded:,} events over {len(every):,} accounts, domain compiled: {compiled}; "
              f"CPU per event: {', '.join(f'{f:.2f}' for f in figures)} µs")


if __name__ == "__main__":
    main()
