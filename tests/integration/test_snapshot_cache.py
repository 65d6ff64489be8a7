"""The decoded snapshots a partition's worker keeps (projector/snapshots.py) are never trusted: a snapshot written
under them (an operator's rebuild, another holder) makes the commit refuse the batch, which is folded again from the
stored snapshot; and they are forgotten when the lease changes hands."""

from datetime import timedelta

import msgspec
from redis.asyncio import Redis

from domain.codec import decode_account, encode_account
from domain.identity import AccountRef
from projector.clock import PartitionClock
from projector.worker import PartitionWorker
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import ORIGIN, is_after
from store.projection import COMMITTED, SNAPSHOT_MOVED, NoticeWrite, Projection, SnapshotWrite
from tests.integration.test_quarantine import wallet_of
from tests.support.components import projector_settings
from tests.support.harness import PARTITIONS, running_app
from tests.support.poison import append_event, grant

KEYS = Keys(PARTITIONS)
REF = AccountRef("tenant_a", "env_a", "cust_cache")
PARTITION = KEYS.partition_of(REF)


def worker_of(redis: Redis, holder: str) -> PartitionWorker:
    projection = Projection(redis, KEYS)
    clock = PartitionClock(EventStore(redis, KEYS, 3600), projection, timedelta(hours=1))
    return PartitionWorker(PARTITION, projection, projector_settings(holder, block_ms=1, lease_ttl_ms=60_000), clock)


async def caught_up(worker: PartitionWorker) -> None:
    for _ in range(50):
        await worker.step()
        head, checkpoint = await worker.projection.feed_head(PARTITION), await worker.projection.checkpoint(PARTITION)
        if not is_after(head, checkpoint):
            return
    raise AssertionError("the worker did not reach the feed head")


async def stored(redis: Redis) -> tuple[str, bytes]:
    position, state = await redis.hmget(KEYS.snapshot(REF), ["p", "s"])
    return position.decode(), state


async def test_a_snapshot_rewritten_under_the_cache_is_refolded_from_the_store(clean_redis: str, aredis: Redis) -> None:
    store = EventStore(aredis, KEYS, 3600)
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = await wallet_of(client, REF, "10")
    worker = worker_of(aredis, "cache")
    await worker.keep_lease(True)
    await caught_up(worker)
    assert REF in worker.snapshots.kept
    position, state = await stored(aredis)
    # As an operator's rebuild may: the same position, another state (a marker the fold leaves alone).
    rebuilt = msgspec.structs.replace(decode_account(state), usage_events=1000)
    await aredis.hset(KEYS.snapshot(REF), "s", encode_account(rebuilt))
    await append_event(store, REF, grant(wallet_id, "5"))
    await caught_up(worker)
    final_position, final_state = await stored(aredis)
    final = decode_account(final_state)
    assert is_after(final_position, position)
    assert final.usage_events == 1000  # folded from the stored snapshot, not from the one kept in memory
    assert final.applied == rebuilt.applied + 1  # the new event folded once
    assert worker.snapshots.kept[REF].state == final_state


async def test_another_holders_takeover_empties_the_cache(clean_redis: str, aredis: Redis) -> None:
    store = EventStore(aredis, KEYS, 3600)
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = await wallet_of(client, REF, "10")
    first, second = worker_of(aredis, "first"), worker_of(aredis, "second")
    await first.keep_lease(True)
    await caught_up(first)
    assert first.snapshots.kept
    await aredis.delete(KEYS.lease(PARTITION))  # the first holder's lease expired (a long pause)
    await second.keep_lease(True)
    await append_event(store, REF, grant(wallet_id, "5"))
    await caught_up(second)
    await second.release()
    await append_event(store, REF, grant(wallet_id, "7"))
    assert await first.step() == 0  # folded from what it kept, refused: the lease was someone else's meanwhile
    assert first.lease is None and not first.snapshots.kept
    await first.keep_lease(True)  # a new token
    await caught_up(first)
    _, state = await stored(aredis)
    assert decode_account(state).applied == 3  # the wallet created (with its first credits), two grants: each once


async def test_a_commit_from_a_snapshot_that_moved_writes_nothing(aredis: Redis) -> None:
    """One account's base is not the stored snapshot: nothing of the batch is written (not the other account, not a
    notice, not the checkpoint), however the arguments are ordered."""
    projection, other = Projection(aredis, KEYS), AccountRef("tenant_a", "env_a", "cust_cache_other")
    await aredis.hset(KEYS.snapshot(REF), mapping={"p": "5-0", "s": b"stored"})
    lease = await projection.take_lease(PARTITION, "moved", 5000, None)
    assert lease is not None
    writes = [SnapshotWrite(other, "6-0", b"new other"), SnapshotWrite(REF, "6-0", b"new", base=b"kept in memory")]
    notice = NoticeWrite("a-notice", b"payload", 1)
    outcome = await projection.commit(PARTITION, lease, ORIGIN, "9-0", writes, "now", 2, [notice])
    assert outcome == SNAPSHOT_MOVED
    assert await stored(aredis) == ("5-0", b"stored")
    assert not await aredis.exists(KEYS.snapshot(other))
    assert await aredis.xlen(KEYS.notices(PARTITION)) == 0
    assert await projection.checkpoint(PARTITION) == ORIGIN
    assert await projection.commit(PARTITION, lease, ORIGIN, "9-0", writes[:1], "now", 2, [notice]) == COMMITTED
