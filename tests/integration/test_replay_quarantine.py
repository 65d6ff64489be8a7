"""Replay and its retention floors on a real Redis: an account whose history cannot be folded is reported and
rebuilt quarantined while the rest switch; the floors are renewed while a replay runs and removed at its end; a
partition of several chunks (reads and writes overlapping the folds) rebuilds as the live fold left it, and a failed
read or write stops the rebuild."""

import asyncio
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from projector import replay
from projector.replay import Replayer
from store.eventstore import EventStore
from store.floors import RetentionFloors
from store.generation import live_generation
from store.keys import Keys
from store.projection import Projection
from store.quarantine import Quarantines
from tests.integration.test_quarantine import wallet_of
from tests.support.harness import PARTITIONS, running_app, wait_folded
from tests.support.poison import append_event, same_partition, unfoldable_grant

KEYS = Keys(PARTITIONS)


async def test_a_floor_outlives_its_ttl_while_the_replay_runs_and_is_removed_at_its_end(aredis: Redis) -> None:
    floors = RetentionFloors(aredis, KEYS, ttl_s=0.3)
    loop = asyncio.get_running_loop()
    async with floors.kept():
        await floors.hold(2, "5-0")
        until = loop.time() + 1.2  # four TTLs: without renewal it would be gone after the first
        while loop.time() < until:
            assert await aredis.get(KEYS.retention_floor(2)) == b"5-0"
            await asyncio.sleep(0.05)
    assert not await aredis.exists(KEYS.retention_floor(2))


async def test_replay_reports_an_unfoldable_account_and_rebuilds_it_quarantined(
    clean_redis: str, aredis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "SWITCH_SETTLE_S", 0.0)
    poisoned, healthy = same_partition(KEYS, 2, prefix="cust_rp")
    async with running_app(clean_redis, projector=False) as client:
        wallets = {ref: await wallet_of(client, ref, "10") for ref in (poisoned, healthy)}
    bad, _ = await append_event(EventStore(aredis, KEYS, 3600), poisoned, unfoldable_grant(wallets[poisoned]))
    replayer = Replayer(aredis, KEYS, timedelta(hours=1), 3600)
    dry = await replayer.rebuild_all(dry_run=True, progress=lambda done, total: None)
    assert [(x.ref, x.log_position) for x in dry.quarantined] == [(poisoned, bad)] and not dry.switched
    assert await live_generation(aredis, KEYS) == 1
    report = await replayer.rebuild_all(dry_run=False, progress=lambda done, total: None)
    target = msgspec.structs.replace(KEYS, generation=2)
    letter = await Quarantines(aredis, target).get(poisoned)
    rebuilt, healthy_snapshot = await Projection(aredis, target).load_snapshots([poisoned, healthy])
    assert report.switched and await live_generation(aredis, KEYS) == 2
    assert [x.ref for x in report.quarantined] == [poisoned] and report.accounts == 2
    assert letter is not None and letter.log_position == bad and letter.kind == "fold"
    assert rebuilt.quarantined is not None and rebuilt.position != bad and rebuilt.state is not None
    assert healthy_snapshot.quarantined is None and healthy_snapshot.state is not None
    floors = [await aredis.exists(KEYS.retention_floor(p)) for p in range(PARTITIONS)]
    assert not any(floors), "the replay left its floors behind"


async def test_a_partition_of_several_chunks_is_rebuilt_as_the_live_projector_folded_it(
    clean_redis: str, aredis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 2 accounts: each chunk's read and the previous chunk's write overlap the fold of the next (a
    partition of 5 accounts has three chunks). Every account is rebuilt byte for byte as the live projector left it."""
    monkeypatch.setattr(replay, "SWITCH_SETTLE_S", 0.0)
    monkeypatch.setattr(replay, "CHUNK", 2)
    refs = same_partition(KEYS, 5, prefix="cust_ch")
    async with running_app(clean_redis) as client:
        for n, ref in enumerate(refs):
            await wallet_of(client, ref, str(10 + n))
        for ref in refs:
            await wait_folded(aredis, ref)
    live = await Projection(aredis, KEYS).load_snapshots(refs)
    report = await Replayer(aredis, KEYS, timedelta(hours=1), 3600).rebuild_all(dry_run=False,
                                                                             progress=lambda done, total: None)
    rebuilt = await Projection(aredis, msgspec.structs.replace(KEYS, generation=2)).load_snapshots(refs)
    assert report.switched and report.accounts == len(refs) and not report.quarantined
    assert [(s.position, s.state) for s in rebuilt] == [(s.position, s.state) for s in live]
    assert all(s.state for s in rebuilt)


async def chunks_of_one_account(clean_redis: str, aredis: Redis, monkeypatch: pytest.MonkeyPatch,
                                prefix: str) -> Replayer:
    """A replayer over three accounts of one partition with a wallet each, read and written one account a chunk."""
    monkeypatch.setattr(replay, "SWITCH_SETTLE_S", 0.0)
    monkeypatch.setattr(replay, "CHUNK", 1)
    async with running_app(clean_redis, projector=False) as client:
        for ref in same_partition(KEYS, 3, prefix=prefix):
            await wallet_of(client, ref, "10")
    return Replayer(aredis, KEYS, timedelta(hours=1), 3600)


async def test_a_chunk_whose_write_fails_fails_the_rebuild_before_any_switch(
    clean_redis: str, aredis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write of one chunk runs while the next folds: its failure still stops the rebuild (raised, no switch,
    no chunk written after it)."""
    replayer = await chunks_of_one_account(clean_redis, aredis, monkeypatch, "cust_wf")
    write, writes = replayer._write, 0

    async def failing_second(target: Keys, folded: list[Any]) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:
            raise ConnectionError("the second chunk's write failed")
        await write(target, folded)

    monkeypatch.setattr(replayer, "_write", failing_second)
    with pytest.raises(ConnectionError, match="second chunk"):
        await replayer.rebuild_all(dry_run=False, progress=lambda done, total: None)
    assert await live_generation(aredis, KEYS) == 1
    assert writes == 2, "the rebuild went on after a chunk's write failed"


async def test_a_failed_read_stops_the_rebuild_and_the_write_in_flight_is_cancelled(
    clean_redis: str, aredis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next chunk's read fails while the last chunk's write is still running: the rebuild raises, and the
    write is cancelled rather than left running after it (nothing waits for it any more)."""
    replayer = await chunks_of_one_account(clean_redis, aredis, monkeypatch, "cust_rf")
    read, reads, ended = replayer.store.read_raw_logs, 0, asyncio.Event()
    outcome: list[str] = []

    async def failing_second(chunk: Any) -> Any:
        nonlocal reads
        reads += 1
        if reads == 2:
            raise ConnectionError("the second chunk's read failed")
        return await read(chunk)

    async def never_done(target: Keys, folded: list[Any]) -> None:
        try:
            await ended.wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    monkeypatch.setattr(replayer.store, "read_raw_logs", failing_second)
    monkeypatch.setattr(replayer, "_write", never_done)
    with pytest.raises(ConnectionError, match="second chunk"):
        await asyncio.wait_for(replayer.rebuild_all(dry_run=False, progress=lambda done, total: None), 60)
    for _ in range(100):  # the cancellation is delivered at the write's next step: poll for it, bounded
        if outcome:
            break
        await asyncio.sleep(0)
    assert outcome == ["cancelled"]
    assert await live_generation(aredis, KEYS) == 1
