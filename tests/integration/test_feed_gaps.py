"""Gaps in a partition feed: an entry deleted or trimmed under a lagging projector stops the fold of its account
(quarantined, kind gap) instead of being skipped; other accounts go on; a retry refolds from the customer stream."""

from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.codec import decode_ref
from domain.identity import AccountRef
from projector.clock import PartitionClock
from projector.quarantine import Operator
from projector.worker import PartitionWorker
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import is_after, text
from store.projection import Projection
from store.quarantine import Quarantines
from tests.integration.test_quarantine import GRANT, wallet_of
from tests.support.components import projector_settings
from tests.support.harness import PARTITIONS, running_app
from tests.support.poison import same_partition

KEYS = Keys(PARTITIONS)
GRACE = timedelta(hours=1)


async def catch_up(worker: PartitionWorker, projection: Projection) -> None:
    """Step the (lagging) projector's worker until its checkpoint reaches the feed head."""
    await worker.keep_lease(True)
    assert worker.lease is not None
    for _ in range(100):
        await worker.step()
        if not is_after(await projection.feed_head(worker.partition), await projection.checkpoint(worker.partition)):
            return
    raise AssertionError("the worker did not reach the feed head")


async def feed_of(redis: Redis, ref: AccountRef) -> list[tuple[str, str]]:
    """(feed position, log position) of the account's entries still in its partition feed."""
    entries: Any = await redis.xrange(KEYS.feed(KEYS.partition_of(ref)))
    return [(text(i), text(f[b"l"])) for i, f in entries if decode_ref(f[b"c"]) == ref]


@pytest.mark.parametrize("how", ["deleted", "trimmed"])
async def test_a_missing_feed_entry_stops_its_accounts_fold_until_retried(
    clean_redis: str, aredis: Redis, how: str
) -> None:
    store, projection = EventStore(aredis, KEYS, 3600), Projection(aredis, KEYS)
    gapped, neighbour = same_partition(KEYS, 2, prefix="cust_gap")
    partition = KEYS.partition_of(gapped)
    async with running_app(clean_redis, projector=False) as client:  # the projector lags: nothing folded yet
        wallets = {ref: await wallet_of(client, ref, "10") for ref in (gapped, neighbour)}
        for credits in (1, 2):
            for wallet_id in wallets.values():
                body = {**GRANT, "credits_to_add": credits}
                response = await client.post(f"/v1/wallets/{wallet_id}/top-up", json=body)
                assert response.status_code == 200, response.text
        (_, created_log), (second, second_log), (_, third_log) = await feed_of(aredis, gapped)
        if how == "deleted":
            await aredis.xdel(KEYS.feed(partition), second)
        else:  # as a trim past an expired replay floor would: everything below the gapped account's second entry
            await aredis.xtrim(KEYS.feed(partition), minid=second, approximate=False)
        worker = PartitionWorker(partition, projection, projector_settings("gaps", block_ms=1),
                                 PartitionClock(store, projection, GRACE))
        await catch_up(worker, projection)
        letter = await Quarantines(aredis, KEYS).get(gapped)
        snapshot = (await projection.load_snapshots([gapped]))[0]
        outcome = await Operator(store, projection, GRACE).retry(gapped)
        cached = (await client.get(f"/v1/wallets/{wallets[gapped]}/balance/real-time?from_cache=true")).json()
        other = (await client.get(f"/v1/wallets/{wallets[neighbour]}/balance/real-time?from_cache=true")).json()
    assert letter is not None and letter.kind == "gap", letter
    assert "was never folded" in letter.reason
    if how == "deleted":  # folded up to the entry before the gap, not one entry further
        assert letter.log_position == third_log
        assert snapshot.position == created_log
        assert other["credit_balance"] == "13", other  # the neighbour folded everything, in the same batches
    else:  # its first entry is gone: nothing folded (the neighbour, trimmed too, is quarantined as well)
        assert letter.log_position == second_log
        assert snapshot.position == "0-0" and snapshot.quarantined is not None
    assert outcome.verdict == "released", outcome
    assert cached["credit_balance"] == "13" and await Quarantines(aredis, KEYS).get(gapped) is None
