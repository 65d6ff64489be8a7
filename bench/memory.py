"""Redis memory per usage event and per customer, measured on a fresh redis-server, and a sizing table.

Run: .venv/bin/python -m bench.memory [--customers 2000] [--events 100000]
"""

import argparse
import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from cli.settings import Settings
from cli.stores import free_port, start_redis_server
from cli.wiring import run_projector
from domain.events import UsageRecorded, WalletCreated
from domain.identity import AccountRef
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from store.projection import Projection

PARTITIONS = 16
DEDUP_DAYS = 35


async def used(redis: Redis) -> int:
    info: Any = await redis.info("memory")
    return int(info["used_memory"])


async def caught_up(projection: Projection) -> bool:
    for partition in range(PARTITIONS):
        lag = await projection.lag(partition)
        if lag.behind:
            return False
    return True


async def measure(url: str, customers: int, events: int) -> dict[str, float]:
    redis = Redis.from_url(url)
    keys = Keys(PARTITIONS)
    store = EventStore(redis, keys, DEDUP_DAYS * 86400)
    now = datetime.now(UTC)
    refs = [AccountRef("tenant", "env", f"customer_{i:07d}") for i in range(customers)]
    base = await used(redis)
    for start in range(0, customers, 500):
        await store.append_each([
            (ref, WalletCreated(id=f"w{i}", at=now, wallet_id=f"wallet_{i}", tenant_id="tenant", environment_id="env",
                                customer_id=ref.customer_id, currency="usd", wallet_type="PRE_PAID",
                                conversion_rate=1, topup_conversion_rate=1, initial_credits=100,  # type: ignore[arg-type]
                                initial_transaction_id=f"t{i}"), None)
            for i, ref in enumerate(refs[start:start + 500], start)
        ])
    after_wallets = await used(redis)
    for start in range(0, events, 1000):
        batch = []
        for n in range(start, min(events, start + 1000)):
            ref = refs[n % customers]
            event = UsageRecorded(id=f"event_{n:012d}", at=now, event_name="api_call",
                                  external_customer_id=ref.customer_id, timestamp=now,
                                  properties={"tokens": n % 1000, "model": "large"})
            batch.append((ref, event, Dedup(scope="event", key=event.id)))
        await store.append_each(batch)
    after_events = await used(redis)
    stop = asyncio.Event()
    settings = Settings(partitions=PARTITIONS, trim_every_batches=1, request_log=False)
    task = asyncio.create_task(run_projector(redis, settings, stop, "memory-bench"))
    projection = Projection(redis, keys)
    while not await caught_up(projection):
        await asyncio.sleep(0.2)
    stop.set()
    await task
    for partition in range(PARTITIONS):
        await redis.xtrim(keys.feed(partition), minid=await projection.checkpoint(partition))
    after_fold = await used(redis)
    dedup_bytes = await _dedup_bytes(redis, keys, refs[0])
    snapshot_bytes = await _average(redis, [keys.snapshot(ref) for ref in refs[:200]])
    await redis.aclose()
    retained = (after_fold - after_wallets - customers * snapshot_bytes) / events
    return {
        "per_customer_wallet_events": (after_wallets - base) / customers,
        "per_customer_snapshot": snapshot_bytes,
        "per_event_with_feed_untrimmed": (after_events - after_wallets) / events,
        "per_event_retained": retained,
        "per_event_dedup_key": dedup_bytes,
        "per_event_stream_entry": retained - dedup_bytes,
    }


async def _average(redis: Redis, names: list[str]) -> float:
    sizes = [await redis.memory_usage(name) or 0 for name in names]
    return sum(sizes) / max(1, len(sizes))


async def _dedup_bytes(redis: Redis, keys: Keys, ref: AccountRef) -> float:
    name = keys.dedup(ref, "event", "event_000000000000")
    value: Any = await redis.memory_usage(name)
    return float(value or 0)


def sizing(figures: dict[str, float]) -> str:
    customers, per_month = 1_000_000, 1_000
    events_month = customers * per_month
    rows = [
        ("customers: wallet history + snapshot", customers * (figures["per_customer_wallet_events"]
                                                             + figures["per_customer_snapshot"])),
        ("one month of usage history (customer streams)", events_month * figures["per_event_stream_entry"]),
        (f"dedup window ({DEDUP_DAYS} days of event ids)",
         events_month * DEDUP_DAYS / 30 * figures["per_event_dedup_key"]),
    ]
    lines = ["| what | bytes | GiB |", "|---|---|---|"]
    lines += [f"| {name} | {size:,.0f} | {size / 2**30:,.1f} |" for name, size in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        server = start_redis_server(Path(data), port, fsync="no")
        try:
            figures = asyncio.run(measure(f"redis://127.0.0.1:{port}/0", args.customers, args.events))
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"customers={args.customers} events={args.events}")
    for name, value in figures.items():
        print(f"{name}: {value:,.0f} bytes")
    print(sizing(figures))


if __name__ == "__main__":
    main()
