"""Redis bytes per customer in steady state (1,000 usage events a month), per structure, and a 1M-customer sizing.

Run: .venv/bin/python -m bench.memory [--customers 2000]

On a fresh redis-server: N customers each get a PRE_PAID wallet (with a critical alert setting) and one day of usage
(1,000 / 30 events, each with its dedup marker, priced by a rate card); the real projector folds them with its
retention running; the webhook sender is modelled as keeping up (its checkpoints set to each alerts head) and one
retention round runs on every partition. Steady state is then modelled from that day, and said so:
- customer streams hold one day of events: the archive (another branch) moves older folded entries to Parquet with a
  1-day retention, so each stream is trimmed to its last day's entries here (the wallet's creation entry goes);
- dedup: measured on its own over a whole 35-day window (the store's clock moved a day at a time, 33 ids a day),
  as bytes freed per id when the window's buckets are deleted; then times the ids a customer holds: a week's bucket
  lives until one window after its week ends, so at any moment the window's ids plus those of the part of the
  oldest week before it (3.5 days on average: DEDUP_HELD_DAYS); the fill's own buckets (one day) are deleted
  uncounted;
- ledger keys (the two hashes of store/ledger.py) hold the wallet's initial grant and a real settlement: each
  customer's open period is closed (a PeriodClosed appended and folded by the projector, which debits the period's
  usage from the wallet: the "usage settlement" entry); a customer of this workload adds one settlement a month, so
  LEDGER_MONTHS - 1 more entries are added as copies of that settlement entry (its encoded bytes, under new seqs and
  ids), the bytes they add measured per entry, and a year's worth counted;
- alerts streams hold one day of notices (TALLY_ALERTS_RETENTION_SECONDS); a customer of this workload writes about
  `NOTICES_A_MONTH` notices a month (its period settlement and its balance alerts), so 1/30 of that is held.
Each structure is measured by the `used_memory` Redis frees when it is deleted, one structure at a time.
"""

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from cli.settings import Settings
from cli.stores import REDIS_SETTINGS, free_port, start_redis_server
from cli.wiring import retention_settings, run_projector
from domain.codec import decode_account, decode_ledger_entry
from domain.events import PeriodClosed, UsageRecorded, WalletCreated
from domain.identity import AccountRef
from domain.pricing import PriceVersion
from domain.settings import AlertSettings, AlertThreshold
from projector.retention import PartitionRetention
from store.dedup import DAY, SHARDS, WEEK, week_of
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from store.projection import Projection
from store.ratecard import add_price
from store.retention import Retention

PARTITIONS = 16
EVENTS_A_MONTH = 1000
DAY_EVENTS = round(EVENTS_A_MONTH / 30)
DEDUP_DAYS = 35
DEDUP_HELD_DAYS = DEDUP_DAYS + 3.5
NOTICES_A_MONTH = 2
LEDGER_MONTHS = 12
SETTLEMENT = "usage settlement"
FURTHER_SETTLEMENT = f"ledger, each further settlement (bytes per entry, {LEDGER_MONTHS - 1} added)"
TENANT, ENVIRONMENT = "tenant_mem", "env_mem"
NOW = datetime.now(UTC).replace(microsecond=0)
PRICE = PriceVersion(id="price_mem", lookup_key="api_call", event_name="api_call", currency="usd",
                     aggregation="COUNT", billing_model="FLAT_FEE", amount=Decimal("0.01"),
                     effective_from=NOW - timedelta(days=1), created_at=NOW - timedelta(days=1))
ALERTS = AlertSettings(alert_enabled=True, critical=AlertThreshold(threshold=Decimal(1), condition="below"))


async def used(redis: Redis) -> int:
    info: Any = await redis.info("memory")
    return int(info["used_memory"])


async def settled(redis: Redis) -> int:
    """`used_memory` once Redis's cron has shrunk its key tables after deletions (it stops moving)."""
    last = await used(redis)
    for _ in range(20):
        await asyncio.sleep(0.5)
        now = await used(redis)
        if now == last:
            return now
        last = now
    return last


async def key_bytes(redis: Redis, names: list[str]) -> int:
    """What `MEMORY USAGE … SAMPLES 0` (every element counted) says `names` hold: not moved by allocator timing."""
    total = 0
    for name in names:
        total += int(await redis.memory_usage(name, samples=0) or 0)
    return total


async def freed(redis: Redis, names: list[str]) -> int:
    """The bytes Redis frees when `names` are deleted (key-table shrinking included)."""
    before = await settled(redis)
    for start in range(0, len(names), 1000):
        if names[start:start + 1000]:
            await redis.delete(*names[start:start + 1000])
    return before - await settled(redis)


def ref(i: int) -> AccountRef:
    return AccountRef(TENANT, ENVIRONMENT, f"customer_{i:07d}")


def wallet(i: int) -> WalletCreated:
    return WalletCreated(id=f"wc_{i}", at=NOW, wallet_id=f"wallet_{i:07d}", tenant_id=TENANT,
                         environment_id=ENVIRONMENT, customer_id=ref(i).customer_id, currency="usd",
                         wallet_type="PRE_PAID", conversion_rate=Decimal(1), topup_conversion_rate=Decimal(1),
                         initial_credits=Decimal(100), initial_transaction_id=f"wtx_init_{i}", alert_settings=ALERTS)


def usage(i: int, n: int) -> UsageRecorded:
    at = NOW + timedelta(microseconds=n)
    return UsageRecorded(id=f"event_{i:07d}_{n:04d}", at=at, event_name="api_call",
                         external_customer_id=ref(i).customer_id, timestamp=at,
                         properties={"tokens": 100 + n % 900, "model": "large"}, source="api")


async def fill(store: EventStore, customers: int) -> None:
    await add_price(store.redis, store.keys, TENANT, ENVIRONMENT, PRICE)
    for start in range(0, customers, 500):
        chunk = range(start, min(customers, start + 500))
        for i in chunk:
            await store.index_wallet(wallet(i).wallet_id, ref(i))
        await store.append_each([(ref(i), wallet(i), Dedup(scope="event", key=wallet(i).id)) for i in chunk])
        await store.append_each([(ref(i), usage(i, n), Dedup(scope="event", key=usage(i, n).id))
                                 for i in chunk for n in range(DAY_EVENTS)])


async def fold_and_retain(redis: Redis, keys: Keys) -> None:
    """The real projector (retention included) until caught up; then the sender keeping up, and one round."""
    settings = Settings(partitions=PARTITIONS, request_log=False, retention_interval_ms=200)
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(redis, settings, stop, "memory-bench"))
    projection = Projection(redis, keys)
    while any([(await projection.lag(p)).behind for p in range(PARTITIONS)]):
        await asyncio.sleep(0.2)
    stop.set()
    await task
    rounds = PartitionRetention(Retention(redis, keys), retention_settings(settings))
    for partition in range(PARTITIONS):
        head: Any = await redis.xrevrange(keys.notices(partition), count=1)
        if head:
            await redis.set(keys.webhook_checkpoint(partition), head[0][0])
        await rounds.run(partition)


async def settle_periods(store: EventStore, redis: Redis, keys: Keys, customers: int) -> None:
    """Close each customer's open period (as the projector's clock does at its end): its settlement is folded next."""
    snapshots = await Projection(redis, keys).load_snapshots([ref(i) for i in range(customers)])
    closes = []
    for i, snapshot in enumerate(snapshots):
        assert snapshot.state is not None, f"{ref(i)} was never folded"
        (period,) = decode_account(snapshot.state).periods.values()
        closes.append((ref(i), PeriodClosed(id=f"close_{i}", at=NOW + timedelta(hours=1), period_start=period.start,
                                            period_end=period.end), None))
    await store.append_each(closes)


async def keep_one_day(redis: Redis, keys: Keys, customers: int) -> None:
    """Model the archive at its 1-day default: each customer stream keeps its last day's entries only."""
    for i in range(customers):
        await redis.xtrim(keys.log(ref(i)), maxlen=DAY_EVENTS, approximate=False)


async def fill_buckets(redis: Redis, keys: Keys, customer: AccountRef) -> list[str]:
    """The dedup buckets the fill wrote for a customer (its own day; dedup is measured over a window apart)."""
    weeks = range(week_of(NOW.timestamp()) - 1, week_of(NOW.timestamp()) + 2)
    return [name for shard in range(SHARDS) for name in keys.dedup_buckets(customer, shard, weeks)]


async def ledger_figures(redis: Redis, keys: Keys, customers: int) -> tuple[float, float]:
    """Bytes per customer of the ledger keys with their grant and first settlement, then what each further
    settlement adds (LEDGER_MONTHS - 1 copies of the customer's settlement entry under the next seqs and new ids).
    Both by MEMORY USAGE of the two keys (every element counted): the used_memory a deletion frees moved by a
    factor of three from run to run for these few hundred bytes."""
    names = [n for i in range(customers) for n in (keys.ledger(ref(i)), keys.ledger_ids(ref(i)))]
    before = await key_bytes(redis, names)
    for i in range(customers):
        entries: Any = await redis.hgetall(keys.ledger(ref(i)))
        ids: Any = await redis.hgetall(keys.ledger_ids(ref(i)))
        (field, entry), = [(f, e) for f, e in entries.items() if decode_ledger_entry(e).description == SETTLEMENT]
        settlement_id = decode_ledger_entry(entry).id.encode()
        (id_name, seq), = [(name, n) for name, n in ids.items() if name.endswith(settlement_id)]
        wallet_part, first = field.rsplit(b":", 1)
        async with redis.pipeline(transaction=False) as pipe:
            for month in range(1, LEDGER_MONTHS):
                pipe.hset(keys.ledger(ref(i)), wallet_part + b":%d" % (int(first) + month), entry)
                pipe.hset(keys.ledger_ids(ref(i)), id_name + b"_%02d" % month, int(seq) + month)
            await pipe.execute()
    per_entry = (await key_bytes(redis, names) - before) / (customers * (LEDGER_MONTHS - 1))
    await redis.delete(*names)
    return before / customers, per_entry


async def breakdown(redis: Redis, keys: Keys, customers: int) -> dict[str, float]:
    """Bytes per customer of each structure (dedup, ledger entries and notices: per one), measured by deleting it."""
    notices = sum([int(await redis.xlen(keys.notices(p))) for p in range(PARTITIONS)])
    per_partition = range(PARTITIONS)
    one_entry, per_entry = await ledger_figures(redis, keys, customers)
    await redis.delete(*[n for i in range(customers) for n in await fill_buckets(redis, keys, ref(i))])
    figures = {
        "customer stream, one day of events": await freed(redis, [keys.log(ref(i)) for i in range(customers)]),
        "snapshot": await freed(redis, [keys.snapshot(ref(i)) for i in range(customers)]),
        "alerts notice + emitted key (bytes per notice)":
            await freed(redis, [n for p in per_partition for n in (keys.notices(p), keys.notices_emitted(p))])
            / max(1, notices),
        "feed (trimmed below the checkpoint)": await freed(redis, [keys.feed(p) for p in per_partition]),
        "indexes: accounts set, wallet index, due schedule": await freed(
            redis, [n for p in per_partition for n in (keys.accounts(p), keys.due(p))]
            + [keys.wallet_index(wallet(i).wallet_id) for i in range(customers)]),
    }
    rest = await settled(redis)
    await redis.flushall()
    figures["everything else (checkpoints, rate cards, leases ...)"] = rest - await settled(redis)
    figures["dedup, whole window (bytes per id)"] = await window_dedup(redis, keys)
    figures = {name: value if "bytes per" in name else value / customers for name, value in figures.items()}
    figures["ledger keys with the grant and one settlement"] = one_entry
    figures[FURTHER_SETTLEMENT] = per_entry
    return figures


async def window_dedup(redis: Redis, keys: Keys, customers: int = 100) -> float:
    """Customers sending DAY_EVENTS ids a day for DEDUP_DAYS days (the store's clock moved a day at a time): how much
    used_memory drops per id when their buckets (expiry entries included) are deleted."""
    refs = [AccountRef("tenant", "env", f"dedup_customer_{i:04d}") for i in range(customers)]
    start = week_of(time.time()) * WEEK + 4 * DAY  # next Monday 00:00 UTC
    now = [float(start)]
    store = EventStore(redis, keys, DEDUP_DAYS * DAY, clock=lambda: now[0])
    for day in range(DEDUP_DAYS):
        now[0] = start + day * DAY + 3600
        at = datetime.fromtimestamp(now[0], UTC)
        ids = [(ref, f"evt_{ref.customer_id}_{day:02d}_{n:04d}") for ref in refs for n in range(DAY_EVENTS)]
        await store.append_each([(ref, UsageRecorded(id=i, at=at, event_name="api_call", timestamp=at,
                                                     external_customer_id=ref.customer_id), Dedup("event", i))
                                 for ref, i in ids])
    weeks = range(week_of(start), week_of(now[0]) + 1)
    buckets = [name for ref in refs for shard in range(SHARDS) for name in keys.dedup_buckets(ref, shard, weeks)]
    return await freed(redis, buckets) / (DAY_EVENTS * DEDUP_DAYS * customers)


def steady(figures: dict[str, float], dedup_bytes: float) -> dict[str, float]:
    """Bytes per customer in steady state, per structure."""
    return {
        "customer stream (1 day kept; archive)": figures["customer stream, one day of events"],
        f"dedup ({DEDUP_HELD_DAYS:g} days held x {DAY_EVENTS} ids x {dedup_bytes:.1f} B)":
            DEDUP_HELD_DAYS * DAY_EVENTS * dedup_bytes,
        "snapshot": figures["snapshot"],
        f"ledger keys (grant + {LEDGER_MONTHS} monthly settlements)": figures[
            "ledger keys with the grant and one settlement"]
        + (LEDGER_MONTHS - 1) * figures[FURTHER_SETTLEMENT],
        "alerts (1 day of notices)": NOTICES_A_MONTH / 30 * figures["alerts notice + emitted key (bytes per notice)"],
        "feed": figures["feed (trimmed below the checkpoint)"],
        "indexes": figures["indexes: accounts set, wallet index, due schedule"],
        "everything else": figures["everything else (checkpoints, rate cards, leases ...)"],
    }


async def measure(url: str, customers: int) -> dict[str, float]:
    redis = Redis.from_url(url)
    keys = Keys(PARTITIONS)
    try:
        store = EventStore(redis, keys, DEDUP_DAYS * 86400)
        await fill(store, customers)
        await fold_and_retain(redis, keys)
        await settle_periods(store, redis, keys, customers)
        await fold_and_retain(redis, keys)
        await keep_one_day(redis, keys, customers)
        return await breakdown(redis, keys, customers)
    finally:
        await redis.aclose()


def table(rows: dict[str, float]) -> str:
    lines = ["| structure | bytes per customer | 1M customers (GiB) |", "|---|---|---|"]
    lines += [f"| {name} | {size:,.0f} | {size * 1e6 / 2**30:,.2f} |" for name, size in rows.items()]
    total = sum(rows.values())
    lines.append(f"| **total** | **{total:,.0f}** | **{total * 1e6 / 2**30:,.1f}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--server-defaults", action="store_true",
                        help="run redis-server with its own defaults instead of tally's REDIS_SETTINGS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        settings = () if args.server_defaults else REDIS_SETTINGS
        server = start_redis_server(Path(data), port, fsync="no", settings=settings)
        try:
            figures = asyncio.run(measure(f"redis://127.0.0.1:{port}/0", args.customers))
        finally:
            server.terminate()
            server.wait(timeout=10)
    server_settings = "its defaults" if args.server_defaults else " ".join(REDIS_SETTINGS)
    print(f"customers={args.customers} events a month={EVENTS_A_MONTH} (one day = {DAY_EVENTS} per customer held), "
          f"{PARTITIONS} partitions, redis-server with {server_settings}; measured (bytes freed when each structure "
          "is deleted; the ledger's by MEMORY USAGE):")
    for name, value in figures.items():
        print(f"  {name}: {value:,.0f}")
    print("\nsteady state:")
    rows = steady(figures, figures["dedup, whole window (bytes per id)"])
    print(table(rows))
    per_entry = figures[FURTHER_SETTLEMENT]
    print(f"\nthe ledger grows {per_entry:,.0f} B a month (a settlement entry); total in the first month (grant + 1 "
          f"settlement): {sum(rows.values()) - (LEDGER_MONTHS - 1) * per_entry:,.0f} B")


if __name__ == "__main__":
    main()
