"""wait_settled (the crash and fault scenarios' last wait before their audit) returns only once nothing is left to
fold, even when the projector's clock appends a lot's expiry while the wait is checking: a clock event appended just
after the wait read the account's positions, and before it asked whether anything was due, was once taken for
settled; the audit then counted the unfolded expiry as lost (stream one entry longer than applied)."""

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from domain.commands import TopUpWallet
from domain.identity import AccountRef
from projector.clock import PartitionClock
from projector.worker import PartitionWorker
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import is_after
from store.projection import Projection
from tests.support import crash_writer
from tests.support.catchup import lag
from tests.support.components import projector_settings
from tests.support.crash_writer import GRACE, Writer, wait_settled

KEYS = Keys(1)
REF = AccountRef("tenant_w", "env_w", "cust_settle")


async def fold_all(worker: PartitionWorker, projection: Projection) -> None:
    """Step the worker (it does not run the clock by itself) until its checkpoint reaches the feed head."""
    await worker.keep_lease(True)
    for _ in range(100):
        await worker.step()
        if not is_after(await projection.feed_head(0), await projection.checkpoint(0)):
            return
    raise AssertionError("the worker did not reach the feed head")


async def test_a_clock_event_appended_during_the_check_is_folded_before_wait_settled_returns(
    aredis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, projection = EventStore(aredis, KEYS, 3600), Projection(aredis, KEYS)
    clock = PartitionClock(store, projection, GRACE)
    worker = PartitionWorker(0, projection, projector_settings("settle", block_ms=1), clock)
    writer = Writer(store, random.Random(1), [REF])
    await writer.create_wallets()
    expires = datetime.now(UTC) + timedelta(seconds=1)  # time enough to append and fold the top-up first
    writer.last_expiry = expires
    await writer.execute(REF, TopUpWallet(event_id="evt_short", wallet_id=f"w_{REF.customer_id}",
                                          transaction_id="wtx_short", reason="PURCHASED_CREDIT_DIRECT",
                                          credits=Decimal(5), expires_at=expires), ["evt_short"], None)
    await fold_all(worker, projection)  # the expiry is scheduled; nothing else will fold until told to

    async def lag_then_clock(store: EventStore, projection: Projection) -> list[str]:
        """The projector's clock runs right after each read of the positions (the interleaving that fooled it)."""
        behind = await lag(store, projection)
        await clock.run(0)
        return behind

    monkeypatch.setattr(crash_writer, "lag", lag_then_clock)  # the name it calls
    with pytest.raises(TimeoutError):  # the expiry is, or is about to be, appended, and nothing folds it
        await wait_settled(store, projection, writer, timeout=(expires - datetime.now(UTC)).total_seconds() + 1)
    await clock.run(0)  # appends the expiry unless the hook did already
    applied = (await store.read_account(REF, cached=True)).account.applied
    assert applied == len(await store.read_log(REF)) - 1, "the test set nothing up: the expiry was folded"
    await fold_all(worker, projection)
    await asyncio.wait_for(wait_settled(store, projection, writer, timeout=5), 10)
    assert await lag(store, projection) == []
    assert (await store.read_account(REF, cached=True)).account.applied == len(await store.read_log(REF))
