"""Retention on a real Redis, with injected time: each structure loses what it should and never what a reader
still needs (notices not yet queued by the webhook sender or pending in a consumer group, notices whose events are
still in the feed, feed entries above the checkpoint or a replay's floor, unfinished webhook deliveries)."""

import os
import subprocess
import sys
from typing import Any

from redis.asyncio import Redis

from store.keys import Keys
from store.retention import Retention
from store.webhooks import Delivery, Webhooks

PARTITIONS = 4
KEYS = Keys(PARTITIONS)
DAY = 86_400_000
NOW = 100 * DAY  # the injected clock (ms); entries are written with explicit ids before it


async def notices(redis: Redis, *ms: int, partition: int = 0) -> None:
    """Notices as the commit script writes them: the key in the emitted set, the entry in the alerts stream."""
    for at in ms:
        await redis.zadd(KEYS.notices_emitted(partition), {f"key{at}": at})
        await redis.xadd(KEYS.notices(partition), {"k": f"key{at}", "a": "{}"}, id=f"{at}-0")


async def feed(redis: Redis, *ms: int, partition: int = 0) -> None:
    for at in ms:
        await redis.xadd(KEYS.feed(partition), {"c": "x"}, id=f"{at}-0")


async def left(redis: Redis, partition: int = 0) -> tuple[list[str], list[str]]:
    """(alerts-stream ids, emitted keys) still there."""
    entries: Any = await redis.xrange(KEYS.notices(partition))
    members: Any = await redis.zrange(KEYS.notices_emitted(partition), 0, -1)
    return [e[0].decode() for e in entries], sorted(m.decode() for m in members)


async def trim(redis: Redis, keep_ms: int = 1000, limit: int = 100) -> int:
    return await Retention(redis, KEYS).trim_alerts(0, NOW, keep_ms, limit)


async def test_notices_below_every_reader_go_with_their_emitted_keys(aredis: Redis) -> None:
    await notices(aredis, 1000, 2000, 3000, 6000)
    await feed(aredis, 5000, 7000)
    await aredis.set(KEYS.webhook_checkpoint(0), "6000-0")
    assert await trim(aredis) == 3
    assert await left(aredis) == (["6000-0"], ["key6000"])  # 6000 came after the feed's first entry: kept


async def test_notices_the_webhook_sender_has_not_queued_stay(aredis: Redis) -> None:
    await notices(aredis, 1000, 2000, 3000)
    await feed(aredis, 9000)
    assert await trim(aredis) == 0  # no sender ever ran: nothing was queued
    await aredis.set(KEYS.webhook_checkpoint(0), "1000-0")
    assert await trim(aredis) == 1
    assert await left(aredis) == (["2000-0", "3000-0"], ["key2000", "key3000"])


async def test_notices_a_consumer_group_has_not_acknowledged_stay(aredis: Redis) -> None:
    await notices(aredis, 1000, 2000, 3000, 4000)
    await feed(aredis, 9000)
    await aredis.set(KEYS.webhook_checkpoint(0), "4000-0")
    alerts = KEYS.notices(0)
    await aredis.xgroup_create(alerts, "billing", id="0")
    await aredis.xreadgroup("billing", "c1", {alerts: ">"}, count=2)  # 1000 and 2000 delivered, pending
    await aredis.xack(alerts, "billing", "1000-0")
    assert await trim(aredis) == 1
    assert (await left(aredis))[0] == ["2000-0", "3000-0", "4000-0"]
    await aredis.xack(alerts, "billing", "2000-0")
    assert await trim(aredis) == 1  # 3000 was never delivered to the group
    assert (await left(aredis))[0] == ["3000-0", "4000-0"]


async def test_notices_younger_than_the_retention_stay(aredis: Redis) -> None:
    await notices(aredis, NOW - 5000, NOW - 500)
    await feed(aredis, NOW)
    await aredis.set(KEYS.webhook_checkpoint(0), f"{NOW - 500}-0")
    assert await trim(aredis, keep_ms=1000) == 1
    assert await left(aredis) == ([f"{NOW - 500}-0"], [f"key{NOW - 500}"])


async def test_an_emptied_feed_bounds_by_its_last_generated_id(aredis: Redis) -> None:
    await notices(aredis, 1000, 5000, 6000)
    await feed(aredis, 5000)
    await aredis.xtrim(KEYS.feed(0), maxlen=0)
    await aredis.set(KEYS.webhook_checkpoint(0), "6000-0")
    assert await trim(aredis) == 1
    assert (await left(aredis))[0] == ["5000-0", "6000-0"]


async def test_a_round_removes_at_most_its_batch(aredis: Redis) -> None:
    await notices(aredis, 1000, 2000, 3000)
    await feed(aredis, 9000)
    await aredis.set(KEYS.webhook_checkpoint(0), "3000-0")
    assert await trim(aredis, limit=2) == 2
    assert await left(aredis) == (["3000-0"], ["key3000"])
    assert await trim(aredis, limit=2) == 1
    assert await left(aredis) == ([], [])


async def test_the_feed_is_trimmed_exactly_below_the_live_checkpoint_and_a_replay_floor(aredis: Redis) -> None:
    await feed(aredis, 1000, 2000, 3000, 4000, 5000)
    retention = Retention(aredis, KEYS)
    assert await retention.trim_feed(0) == 0  # nothing folded yet
    await aredis.set(KEYS.checkpoint(0), "4000-0")
    await aredis.set(Keys(PARTITIONS, generation=2).checkpoint(0), "2000-0")
    await aredis.set(KEYS.retention_floor(0), "3000-0")
    assert await retention.trim_feed(0) == 2
    assert (await retention.feed_bound(0)).held_by == "replay floor"
    await aredis.set(KEYS.generation_pointer(), 2)  # the next generation is live: its checkpoint is behind
    await aredis.delete(KEYS.retention_floor(0))
    assert await retention.trim_feed(0) == 0
    assert await aredis.xlen(KEYS.feed(0)) == 3


async def test_the_operations_stream_keeps_its_retention(aredis: Redis) -> None:
    for at in (1000, NOW - DAY - 1, NOW - DAY + 1):
        await aredis.xadd(KEYS.operations(0), {"action": "entry_dropped"}, id=f"{at}-0")
    assert await Retention(aredis, KEYS).trim_operations(0, NOW, DAY) == 2
    entries: Any = await aredis.xrange(KEYS.operations(0))
    assert [e[0].decode() for e in entries] == [f"{NOW - DAY + 1}-0"]


def delivery(n: int, tenant: str = "tenant_a") -> Delivery:
    return Delivery(id=f"msg_{n}", endpoint_id="whe_1", tenant_id=tenant, environment_id="env",
                    event_type="wallet.transaction.created", payload="{}", created_ms=n)


async def test_finished_deliveries_go_after_their_retention_pending_ones_never(aredis: Redis) -> None:
    webhooks = Webhooks(aredis, KEYS)
    lease = await webhooks.take_lease("sender", 60_000, None)
    assert lease is not None
    batch = [delivery(1), delivery(2), delivery(3), delivery(4, "tenant_b")]
    assert await webhooks.enqueue(lease, 0, "1-0", batch, now_ms=0)
    for d, status, finished_ms in ((batch[0], "delivered", 1000), (batch[1], "dead", 2000),
                                   (batch[3], "delivered", NOW - 10)):
        d.status = status  # type: ignore[assignment]
        assert await webhooks.record(lease, d, None, finished_ms)
    assert await webhooks.record(lease, batch[2], 5000, 3000)  # failed once, tried again later: pending
    assert await Retention(aredis, KEYS).prune_deliveries(NOW, keep_ms=1000, limit=100) == 2
    assert [d.id for d in await webhooks.deliveries("tenant_a", "env", 10, 0)] == ["msg_3"]
    assert [d.id for d in await webhooks.deliveries("tenant_b", "env", 10, 0)] == ["msg_4"]  # finished lately
    assert await webhooks.get("msg_1") is None and await webhooks.get("msg_2") is None
    assert await aredis.zrange(KEYS.webhook_finished(), 0, -1) == [b"msg_4"]
    assert await aredis.zscore(KEYS.webhook_due(), "msg_3") is not None


async def test_a_delivery_queued_again_is_only_taken_out_of_the_index(aredis: Redis) -> None:
    webhooks = Webhooks(aredis, KEYS)
    lease = await webhooks.take_lease("sender", 60_000, None)
    assert lease is not None
    d = delivery(1)
    assert await webhooks.enqueue(lease, 0, "1-0", [d], now_ms=0)
    await aredis.zadd(KEYS.webhook_finished(), {"msg_1": 5})  # indexed, yet still queued
    assert await Retention(aredis, KEYS).prune_deliveries(NOW, keep_ms=1000, limit=100) == 0
    assert await webhooks.get("msg_1") is not None
    assert await aredis.zcard(KEYS.webhook_finished()) == 0


async def test_the_retention_command_shows_what_holds_each_structure_and_applies_a_round(
    clean_redis: str, aredis: Redis
) -> None:
    await notices(aredis, 1000, 2000)
    await feed(aredis, 1500, 9000)
    await aredis.set(KEYS.checkpoint(0), "9000-0")
    await aredis.set(KEYS.webhook_checkpoint(0), "2000-0")
    env = {**os.environ, "TALLY_REDIS_URL": clean_redis, "TALLY_PARTITIONS": str(PARTITIONS),
           "TALLY_ALERTS_RETENTION_SECONDS": "0"}
    command = [sys.executable, "-c", "from cli.main import run; run()", "retention"]
    shown = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "partition 0: feed=2 below 9000-0 (projector checkpoint); alerts=2 emitted_keys=2 below 1500-0 (feed)" \
        in shown.stdout, shown.stdout
    assert await aredis.xlen(KEYS.notices(0)) == 2  # only shown
    applied = subprocess.run([*command, "--apply"], env=env, capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    assert await left(aredis) == ([], [])  # the feed went on past 1500 (trimmed to the checkpoint) first
    assert await aredis.xlen(KEYS.feed(0)) == 1
