"""A refold from zero (`tally dlq retry` of an account whose snapshot cannot be read) writes no notice for what its
snapshot had folded: those notices were written then, and retention may have removed their emitted keys since."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from cli.wiring import run_projector
from domain.events import CreditsGranted, WalletCreated
from domain.identity import AccountRef
from projector.quarantine import Operator
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from tests.support.catchup import wait_caught_up
from tests.support.harness import PARTITIONS, make_settings

KEYS = Keys(PARTITIONS)
REF = AccountRef("tenant_a", "env_a", "cust_r")


def grant(n: int) -> CreditsGranted:
    return CreditsGranted(id=f"grant{n}", at=datetime.now(UTC), wallet_id="w1", transaction_id=f"t{n}",
                          credits=Decimal(5), reason="FREE_CREDIT_GRANT")


async def notice_keys(redis: Redis) -> list[str]:
    """The keys of the transaction notices (the wallet's creation has its own notice, not counted here)."""
    entries: Any = await redis.xrange(KEYS.notices(KEYS.partition_of(REF)))
    return [key for e in entries if ":tx:" in (key := e[1][b"k"].decode())]


async def test_a_refold_from_zero_emits_only_what_its_snapshot_had_not_folded(aredis: Redis) -> None:
    store, projection = EventStore(aredis, KEYS, 3600), Projection(aredis, KEYS)
    await store.append_each([(REF, WalletCreated(
        id="created", at=datetime.now(UTC), wallet_id="w1", tenant_id=REF.tenant_id, environment_id=REF.environment_id,
        customer_id=REF.customer_id, currency="usd", wallet_type="PRE_PAID", conversion_rate=Decimal(1),
        topup_conversion_rate=Decimal(1)), None), (REF, grant(1), None), (REF, grant(2), None)])
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(aredis, make_settings(), stop, "refold-test"))
    await wait_caught_up(store, projection)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert [k.rsplit(":", 1)[1] for k in await notice_keys(aredis)] == ["t1", "t2"]
    partition = KEYS.partition_of(REF)
    await aredis.delete(KEYS.notices(partition), KEYS.notices_emitted(partition))  # as retention does, in time
    await aredis.hset(KEYS.snapshot(REF), mapping={"s": b"\xc1 unreadable", "q": "snapshot: unreadable"})
    await store.append_each([(REF, grant(3), None)])  # waits in the stream while the account is quarantined

    outcome = await Operator(store, projection, timedelta(hours=1)).retry(REF)
    assert outcome.verdict == "released", outcome
    assert [k.rsplit(":", 1)[1] for k in await notice_keys(aredis)] == ["t3"]
    every: Any = await aredis.xrange(KEYS.notices(KEYS.partition_of(REF)))
    assert len(every) == 1, every  # nor the wallet's creation again
