"""The projector runs retention for the partitions it holds, aged by its injected clock: old operations records go,
and the notices of folded events go with their emitted keys once the webhook sender queued them; the notices of the
events still in the feed stay, one for one with their keys."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from cli.wiring import run_projector
from domain.events import CreditsGranted, WalletCreated
from domain.identity import AccountRef
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from tests.support.catchup import wait_caught_up
from tests.support.harness import PARTITIONS, make_settings
from tests.support.webhook_sender import wait_until

KEYS = Keys(PARTITIONS)
LATER = datetime.now(UTC) + timedelta(days=400)  # the projector's clock: everything written now is old by then


@asynccontextmanager
async def projector(redis: Redis) -> AsyncIterator[None]:
    settings = make_settings(retention_interval_ms=50, alerts_retention_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(redis, settings, stop, "retention-test", lambda: LATER))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def open_wallet(store: EventStore, ref: AccountRef) -> None:
    await store.append_each([(ref, WalletCreated(
        id="created", at=datetime.now(UTC), wallet_id="w1", tenant_id=ref.tenant_id,
        environment_id=ref.environment_id, customer_id=ref.customer_id, currency="usd", wallet_type="PRE_PAID",
        conversion_rate=Decimal(1), topup_conversion_rate=Decimal(1)), None)])


async def top_ups(store: EventStore, ref: AccountRef, numbers: range) -> None:
    for n in numbers:
        await store.append_each([(ref, CreditsGranted(id=f"grant{n}", at=datetime.now(UTC), wallet_id="w1",
                                                      transaction_id=f"t{n}", credits=Decimal(5),
                                                      reason="FREE_CREDIT_GRANT"), None)])


async def stream_keys(redis: Redis, partition: int) -> tuple[list[str], list[str]]:
    """The keys of the transaction notices on the stream, and of those remembered as emitted (the wallet's
    creation has its own notice, not counted here)."""
    entries: Any = await redis.xrange(KEYS.notices(partition))
    members: Any = await redis.zrange(KEYS.notices_emitted(partition), 0, -1)
    return (sorted(k for e in entries if ":tx:" in (k := e[1][b"k"].decode())),
            sorted(k for m in members if ":tx:" in (k := m.decode())))


async def test_the_projector_trims_what_its_partitions_no_longer_need(aredis: Redis) -> None:
    for partition in range(PARTITIONS):
        await aredis.xadd(KEYS.operations(partition), {"action": "entry_dropped"})
    ref = AccountRef("tenant_a", "env_a", "cust_1")
    partition = KEYS.partition_of(ref)
    store, projection = EventStore(aredis, KEYS, 3600), Projection(aredis, KEYS)
    await open_wallet(store, ref)
    await top_ups(store, ref, range(6))
    async with projector(aredis):
        await wait_caught_up(store, projection)
        first, keys = await stream_keys(aredis, partition)
        assert len(first) == 6 and keys == first  # one transaction notice per grant
        for p in range(PARTITIONS):
            await wait_until(lambda p=p: _empty(aredis, KEYS.operations(p)), 20, f"operations of partition {p} trimmed")
        await top_ups(store, ref, range(6, 12))  # the feed moves on past the first notices' events
        await wait_caught_up(store, projection)
        assert set(first) <= set((await stream_keys(aredis, partition))[0])  # the sender has queued none yet

        head: Any = await aredis.xrevrange(KEYS.notices(partition), count=1)
        await aredis.set(KEYS.webhook_checkpoint(partition), head[0][0])
        await wait_until(lambda: _none_of(aredis, partition, first), 20, "the queued first notices trimmed")
        left, left_keys = await stream_keys(aredis, partition)
        assert left_keys == left
        assert any(key.endswith(":t11") for key in left), "the last event is still in the feed: its notice stays"


async def _none_of(redis: Redis, partition: int, keys: list[str]) -> bool:
    return not set(keys) & set((await stream_keys(redis, partition))[0])


async def _empty(redis: Redis, name: str) -> bool:
    return int(await redis.xlen(name)) == 0


async def _len_at_most(redis: Redis, name: str, most: int) -> bool:
    return int(await redis.xlen(name)) <= most
