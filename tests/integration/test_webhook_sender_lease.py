"""The webhook sender as a supervised worker: its lease is fenced (a zombie's writes are refused), it is given back
when the sender stops, the loop outlives a Redis restart, and `tally dev` restarts a companion that fails."""

import asyncio
from pathlib import Path

import msgspec
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import RedisError

from projector.runtime import supervised
from store.connect import connect
from store.keys import Keys
from tests.support.redis_server import RedisServer
from tests.support.webhook_receiver import Route, webhook_receiver
from tests.support.webhook_sender import (
    PARTITIONS,
    SECRET,
    add_endpoint,
    add_notice,
    deliveries,
    running,
    sender,
    wait_until,
)

TENANT = ("tenant_a", "env_a")


async def test_a_zombie_sender_that_lost_its_lease_can_write_nothing(aredis: Redis) -> None:
    await add_endpoint(aredis, TENANT, "whe_1", "http://127.0.0.1:1/")
    await add_notice(aredis, TENANT, "n1")
    zombie, successor = sender(aredis, holder="zombie"), sender(aredis, holder="successor")
    assert await zombie.keep_lease()
    assert await zombie.queue_new() == 1
    [delivery] = await deliveries(aredis, TENANT)
    zombie_lease = zombie.lease
    assert zombie_lease is not None

    await aredis.delete(Keys(PARTITIONS).webhook_lease())  # the zombie paused past its lease's expiry
    assert await successor.keep_lease()
    assert successor.lease != zombie_lease and successor.lease is not None
    await add_notice(aredis, TENANT, "n2")
    checkpoint = await zombie.webhooks.checkpoint(0)

    changed = msgspec.structs.replace(delivery, status="delivered")
    assert not await zombie.webhooks.record(zombie_lease, changed, None, 0)
    assert not await zombie.webhooks.claim(zombie_lease, {delivery.id: 1})
    assert await zombie.queue_new() == 0 and zombie.lease is None
    assert await zombie.webhooks.checkpoint(0) == checkpoint
    assert [(d.id, d.status) for d in await deliveries(aredis, TENANT)] == [(delivery.id, "pending")]
    assert not await zombie.keep_lease()  # and it cannot take the lease back while the successor holds it
    assert await successor.webhooks.record(successor.lease, changed, None, 0)  # the holder's writes go through


async def test_stopping_the_sender_gives_its_lease_back_at_once(aredis: Redis) -> None:
    first = sender(aredis, holder="first", lease_ttl_ms=60_000)
    async with running(first):
        held = await wait_until(first.webhooks.lease_holder, 10, "the first sender took the lease")
        assert held.startswith("first#")
    assert await first.webhooks.lease_holder() is None
    second = sender(aredis, holder="second", lease_ttl_ms=60_000)
    assert await second.keep_lease()  # no waiting for the TTL
    await second.client.aclose()


def _loop_errors() -> float:
    return REGISTRY.get_sample_value("tally_webhook_sender_errors_total", {"stage": "loop"}) or 0.0


async def test_the_sender_outlives_a_redis_restart_and_delivers_what_comes_after(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    redis = connect(server.url)
    try:
        with webhook_receiver({"/in": Route(SECRET, fail_first=0)}) as receiver:
            await add_endpoint(redis, TENANT, "whe_1", receiver.url("/in"))
            await add_notice(redis, TENANT, "before")
            webhook_sender = sender(redis, error_backoff_max_ms=200)
            async with running(webhook_sender) as task:
                await wait_until(lambda: len(receiver.received) == 1, 10, "the first notice delivered")
                errors = _loop_errors()
                server.kill()
                await wait_until(lambda: _loop_errors() > errors + 1, 10, "the sender met the dead Redis")
                server.start()
                await wait_until(lambda: _answers(redis), 10, "Redis answers again")
                await add_notice(redis, TENANT, "after")
                await wait_until(lambda: len(receiver.received) == 2, 15, "the second notice delivered")
                assert not task.done()
    finally:
        await redis.aclose()
        server.stop()


async def _answers(redis: Redis) -> bool:
    try:
        return bool(await redis.ping())
    except (OSError, RedisError):
        return False


async def test_a_companion_that_fails_is_logged_and_started_again_until_stopped() -> None:
    stop = asyncio.Event()
    runs: list[int] = []

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise ConnectionError("Redis is down")
        await stop.wait()

    task = asyncio.create_task(supervised("test", work, stop, restart_s=0.01))
    await wait_until(lambda: len(runs) == 3, 5, "the companion was started three times")
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_the_sender_prunes_finished_deliveries_past_their_retention_only_while_it_holds_the_lease(
    aredis: Redis
) -> None:
    await add_endpoint(aredis, TENANT, "whe_1", "http://127.0.0.1:1/")
    await add_notice(aredis, TENANT, "n1")
    await add_notice(aredis, TENANT, "n2")
    holder = sender(aredis, holder="holder", delivery_keep_ms=1000, retention_interval_ms=1)
    assert await holder.keep_lease() and await holder.queue_new() == 2
    assert holder.lease is not None
    first, second = await deliveries(aredis, TENANT)
    assert await holder.webhooks.record(holder.lease, msgspec.structs.replace(first, status="delivered"), None, 5000)
    lease, holder.lease = holder.lease, None
    assert await holder.prune(10_000) == 0  # not the lease holder: nothing
    holder.lease = lease
    assert await holder.prune(5500) == 0  # finished half a second ago: kept
    await asyncio.sleep(0.01)  # past the (1 ms) interval between rounds
    assert await holder.prune(10_000) == 1
    assert [d.id for d in await deliveries(aredis, TENANT)] == [second.id]  # the pending one stays
    await holder.client.aclose()
