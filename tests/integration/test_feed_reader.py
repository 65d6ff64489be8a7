"""projector/feed_reader.py: the partitions' reads gathered into one XREAD give each worker what its own XREAD
would, block in Redis only while every partition served waits, and never leave a worker waiting for ever."""

import asyncio
import os
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.codec import encode_ref
from domain.identity import AccountRef
from projector.feed_reader import FeedReader
from store.keys import Keys
from store.positions import ORIGIN
from store.projection import FeedEntry, Projection

pytestmark = pytest.mark.skipif(bool(os.environ.get("TALLY_TEST_CLUSTER")),
                                reason="a single server's reader: on a cluster each partition reads its own feed")

KEYS = Keys(4)
LONG_BLOCK_MS = 10_000
PROMPT_S = 2.0  # far below LONG_BLOCK_MS: an answer this fast did not wait for the block to time out


async def append(redis: Redis, partition: int, n: int) -> list[str]:
    ref = encode_ref(AccountRef("tenant_r", "env_r", f"cust_{partition}"))
    ids = []
    for i in range(n):
        entry: Any = await redis.xadd(KEYS.feed(partition), {"c": ref, "l": f"{i + 1}-0", "e": b"x"})
        ids.append(entry.decode())
    return ids


def positions(entries: list[FeedEntry]) -> list[str]:
    return [entry.position for entry in entries]


async def test_waiting_partitions_are_read_in_one_xread_each_as_its_own_read_would(aredis: Redis) -> None:
    projection = Projection(aredis, KEYS)
    written = {p: await append(aredis, p, 3 + p) for p in range(4)}
    reader = FeedReader(projection, count=4, members=lambda: {0, 1, 2, 3})
    afters = {0: ORIGIN, 1: written[1][0], 2: written[2][-1], 3: ORIGIN}
    got = await asyncio.gather(*(reader.read(p, afters[p], block_ms=0) for p in range(4)))
    own = [await projection.read_feed(p, afters[p], 4, None) for p in range(4)]
    assert [positions(entries) for entries in got] == [positions(entries) for entries in own]
    assert [len(entries) for entries in got] == [3, 3, 0, 4]
    assert got == own
    assert reader.reads == 1, "one XREAD for the four"


async def test_an_entry_for_any_waiting_partition_ends_the_blocked_read(aredis: Redis) -> None:
    reader = FeedReader(Projection(aredis, KEYS), count=10, members=lambda: {0, 1})
    waiting = [asyncio.create_task(reader.read(p, ORIGIN, LONG_BLOCK_MS)) for p in (0, 1)]
    await asyncio.sleep(0.1)  # both are in a blocked XREAD by now, or about to be
    written = await append(aredis, 1, 1)
    async with asyncio.timeout(PROMPT_S):
        assert positions(await waiting[1]) == written
    assert not waiting[0].done(), "the partition with nothing new still waits"
    waiting[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting[0]
    assert not reader.pending, "a cancelled read leaves nothing behind"


async def test_while_a_partition_is_busy_the_others_are_not_blocked_in_redis(aredis: Redis) -> None:
    """Partition 1 is served but not waiting (its worker is folding): a read for 0 must not block in Redis, or
    partition 1 coming back would wait for it; 0's new entry is still found within a few gathering rounds."""
    reader = FeedReader(Projection(aredis, KEYS), count=10, members=lambda: {0, 1})
    waiting = asyncio.create_task(reader.read(0, ORIGIN, LONG_BLOCK_MS))
    await asyncio.sleep(0.1)
    reads_before = reader.reads
    written = await append(aredis, 0, 2)
    async with asyncio.timeout(PROMPT_S):
        assert positions(await waiting) == written
    assert reader.reads > reads_before, "polled without blocking"
    async with asyncio.timeout(PROMPT_S):  # a busy partition coming back is served at once, never behind a block
        assert await reader.read(1, ORIGIN, 1) == []


async def test_a_read_with_nothing_returns_empty_once_its_block_passed(aredis: Redis) -> None:
    reader = FeedReader(Projection(aredis, KEYS), count=10, members=lambda: {2})
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await reader.read(2, ORIGIN, 200) == []
    assert loop.time() - started >= 0.19


class FailingProjection:
    async def read_feeds(self, afters: dict[int, str], count: int, block_ms: int | None) -> dict[int, Any]:
        raise ConnectionError("Redis went away")


async def test_a_failed_read_fails_every_request_of_its_round() -> None:
    reader = FeedReader(FailingProjection(), count=10, members=lambda: {0, 1})  # type: ignore[arg-type]
    results = await asyncio.gather(*(reader.read(p, ORIGIN, 50) for p in (0, 1)), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert not reader.pending
