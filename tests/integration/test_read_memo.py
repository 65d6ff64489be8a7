"""Reads remembered in the process stay exact: an unchanged account is answered from the memo, and a new tail
entry, a commit or a snapshot rewritten in place (same position) is read and folded again."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from redis.asyncio import Redis

from cli.wiring import run_projector
from domain.codec import encode_account
from domain.events import CreditsGranted, WalletCreated
from domain.fold import fold
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from tests.support.catchup import wait_caught_up
from tests.support.harness import PARTITIONS, make_settings

KEYS = Keys(PARTITIONS)
REF = AccountRef("tenant_a", "env_a", "cust_memo")


def grant(n: int) -> CreditsGranted:
    return CreditsGranted(id=f"grant{n}", at=datetime.now(UTC), wallet_id="w1", transaction_id=f"t{n}",
                          credits=Decimal(n), reason="FREE_CREDIT_GRANT")


async def credits(store: EventStore, cached: bool = False) -> Decimal:
    return sum((lot.remaining for lot in (await store.read_account(REF, cached)).account.wallets["w1"].lots),
               Decimal(0))


async def fold_all(aredis: Redis, store: EventStore) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(aredis, make_settings(), stop, "memo-test"))
    await wait_caught_up(store, Projection(aredis, KEYS))
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_reads_are_remembered_and_stay_exact(aredis: Redis) -> None:
    store = EventStore(aredis, KEYS, 3600)
    await store.append_each([(REF, WalletCreated(
        id="created", at=datetime.now(UTC), wallet_id="w1", tenant_id=REF.tenant_id,
        environment_id=REF.environment_id, customer_id=REF.customer_id, currency="usd", wallet_type="PRE_PAID",
        conversion_rate=Decimal(1), topup_conversion_rate=Decimal(1)), None), (REF, grant(1), None)])
    first = await store.read_account(REF)
    assert await store.read_account(REF) is first  # nothing changed: no decode, no fold
    await store.append_each([(REF, grant(2), None)])
    assert await credits(store) == 3  # a new tail entry
    await fold_all(aredis, store)
    assert await credits(store) == 3 and await credits(store, cached=True) == 3  # the commit moved the snapshot
    snapshot = await store.read_account(REF, cached=True)
    events = await store.read_log(REF)
    assert snapshot.account == fold(EMPTY_ACCOUNT, events)

    rewritten = fold(EMPTY_ACCOUNT, events[:2])  # the same position, other bytes (as an operator's repair could)
    await aredis.hset(KEYS.snapshot(REF), "s", encode_account(rewritten))
    assert await credits(store, cached=True) == 1
