"""Replay and its retention floors on a real Redis: an account whose history cannot be folded is reported and
rebuilt quarantined while the rest switch; the floors are renewed while a replay runs and removed at its end."""

import asyncio
from datetime import timedelta

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
from tests.support.harness import PARTITIONS, running_app
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
