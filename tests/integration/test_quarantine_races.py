"""The races between the live projector and an operator releasing a quarantined account, on a real Redis: the
commit never writes a quarantined snapshot nor moves one backwards; a release refuses a stream or snapshot that
moved since it was read (and the retry reads again)."""

from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from domain.codec import encode_account
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT
from projector.quarantine import Operator
from store.eventstore import EventStore
from store.keys import Keys
from store.letters import DeadLetter, now_ms
from store.positions import ORIGIN
from store.projection import COMMITTED, Projection, SnapshotWrite
from store.quarantine import MOVED, Quarantines
from tests.integration.test_quarantine import wallet_of
from tests.support.harness import PARTITIONS, running_app
from tests.support.poison import append_event, grant

KEYS = Keys(PARTITIONS)
REF = AccountRef("tenant_a", "env_a", "cust_race")


def letter(position: str) -> DeadLetter:
    return DeadLetter(ref=REF, kind="fold", log_position=position, feed_position="", reason="test", raw=b"x",
                      at_ms=now_ms())


async def commit(projection: Projection, write: SnapshotWrite) -> int:
    partition = KEYS.partition_of(write.ref)
    held = await projection.lease_holder(partition)
    lease = await projection.take_lease(partition, "race", 5000, held)
    assert lease is not None
    checkpoint = await projection.checkpoint(partition)
    return await projection.commit(partition, lease, checkpoint, "9999999999999-0", [write],
                                   datetime.now(UTC).isoformat(), 1)


async def test_the_projector_never_writes_a_quarantined_snapshot_nor_moves_one_backwards(aredis: Redis) -> None:
    projection, quarantines = Projection(aredis, KEYS), Quarantines(aredis, KEYS)
    state = encode_account(EMPTY_ACCOUNT)
    await aredis.hset(KEYS.snapshot(REF), mapping={"p": "200-0", "s": state})
    older = await commit(projection, SnapshotWrite(REF, "100-0", b"older", base=state))
    kept = (await projection.load_snapshots([REF]))[0]
    await quarantines.record(letter("300-0"))
    newer = await commit(projection, SnapshotWrite(REF, "400-0", b"newer", base=state))
    quarantined = (await projection.load_snapshots([REF]))[0]
    assert older == newer == COMMITTED  # the checkpoint moves on either way
    assert (kept.position, kept.state) == ("200-0", state)
    assert (quarantined.position, quarantined.state) == ("200-0", state) and quarantined.quarantined


async def test_a_release_refuses_a_stream_that_moved_and_retry_reads_it_again(clean_redis: str, aredis: Redis) -> None:
    store, projection, quarantines = EventStore(aredis, KEYS, 3600), Projection(aredis, KEYS), Quarantines(aredis, KEYS)
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = await wallet_of(client, REF, "1")
    await quarantines.record(letter("1-0"))  # quarantined before anything was folded
    stale = await store.last_position(REF)
    await append_event(store, REF, grant(wallet_id, "2"))  # the stream moves after the operator read it
    moved = await quarantines.release(REF, stale, ORIGIN, stale, encode_account(EMPTY_ACCOUNT), "", None, [])
    outcome = await Operator(store, projection, timedelta(hours=1)).retry(REF)
    snapshot = (await projection.load_snapshots([REF]))[0]
    assert moved == MOVED and await quarantines.get(REF) is None
    assert outcome.verdict == "released" and snapshot.position == await store.last_position(REF)
    assert snapshot.quarantined is None
