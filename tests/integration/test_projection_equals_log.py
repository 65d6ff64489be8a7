"""Invariant 1 on a real Redis: for random histories, snapshot == real-time read == fold of the stream from zero."""

import asyncio
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from cli.wiring import run_projector
from domain.codec import encode_account
from domain.fold import fold
from domain.state import EMPTY_ACCOUNT
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from store.verify import verify_all
from tests.support.catchup import assert_same_account, wait_caught_up
from tests.support.harness import test_settings as projector_settings
from tests.support.histories import World, histories, play


async def check_history(url: str, ops: list[object], live: bool, read_after: int) -> None:
    """Write the history (with the projector running alongside, or started after), catch up, compare."""
    redis = Redis.from_url(url)
    config = projector_settings()
    keys = Keys(config.partitions)
    store, projection = EventStore(redis, keys, 3600), Projection(redis, keys)
    stop = asyncio.Event()
    projector: asyncio.Task[None] | None = None
    try:
        await redis.flushdb()
        world = World(store)
        if live:
            projector = asyncio.create_task(run_projector(redis, config, stop, "prop-live"))
        await play(world, ops)
        if projector is None:
            projector = asyncio.create_task(run_projector(redis, config, stop, "prop-after"))
        await wait_caught_up(store, projection, timeout=10)
        await assert_projection_equals_log(world, projection, world.now + timedelta(seconds=read_after))
    finally:
        stop.set()
        if projector is not None:
            await asyncio.wait_for(projector, timeout=10)
        await redis.aclose()


async def assert_projection_equals_log(world: World, projection: Projection, now: datetime) -> None:
    store = world.store
    assert world.appended, "the history appended nothing: the generator is broken"
    for ref, acknowledged in world.appended.items():
        cached, exact = await store.read_account(ref, cached=True), await store.read_account(ref)
        log = await store.read_log(ref)
        from_zero = fold(EMPTY_ACCOUNT, log)
        assert exact.tail == 0 and cached.snapshot_position == exact.snapshot_position == from_zero.position
        assert len(log) == acknowledged == from_zero.applied == cached.account.applied == exact.account.applied
        assert_same_account({"snapshot": cached.account, "real-time": exact.account, "fold from zero": from_zero},
                            now)
        [raw] = await projection.load_snapshots([ref])
        assert raw.state == encode_account(from_zero), "the stored snapshot is not byte-identical to a rebuild"
    report = await verify_all(store, projection)
    assert report.drifts == [] and report.behind == []
    assert (report.accounts, report.events) == (len(world.appended), sum(world.appended.values()))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories, live=st.booleans(), read_after=st.integers(0, 7200))
def test_snapshot_real_time_read_and_fold_from_zero_are_equal(
    clean_redis: str, history: list[object], live: bool, read_after: int
) -> None:
    asyncio.run(check_history(clean_redis, history, live, read_after))
