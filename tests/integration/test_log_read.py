"""store/log_read.py on a real Redis: a customer log read from XRANGE's replies as the server sent them gives exactly
the entries read from redis-py's parsed replies, for a round trip of many accounts' first pages and for a stream
longer than a page, from the start and from a position. On a cluster both readers get parsed replies."""

import os
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.identity import AccountRef
from store.archive.reader import ArchiveReader
from store.entries import LogEntry
from store.keys import Keys
from store.log_read import LOG_PAGE, LogReader
from store.ratecard import RateCards

ON_CLUSTER = bool(os.environ.get("TALLY_TEST_CLUSTER"))  # `make cluster`: every redis_url names a cluster
KEYS = Keys(4)
SHAPES: list[tuple[bytes, ...]] = [
    (b"e", b"\x01usage", b"r", b"digest-1"),  # usage, as the append scripts write it
    (b"e", b"\x02grant"),  # no rate card
    (b"r", b"digest-2", b"e", b"\x03"),  # another order
    (b"r", b"digest-3"),  # no payload
    (b"e", b"x", b"r", b"digest-1", b"extra", b"1"),
    (b"e", b"x", b"e", b"y"),  # a name twice: the last counts
    (b"e", b""),
]
EXPECTED = [(b"\x01usage", b"digest-1"), (b"\x02grant", None), (b"\x03", b"digest-2"), (b"", b"digest-3"),
            (b"x", b"digest-1"), (b"y", None), (b"", None)]


def reader(redis: Redis, as_sent: bool) -> LogReader:
    log_reader = LogReader(redis, KEYS, ArchiveReader(redis, KEYS), RateCards(redis, KEYS))
    if not as_sent:
        log_reader.xrange = "XRANGE"  # the name redis-py parses the reply of
    return log_reader


async def write(redis: Redis, ref: AccountRef, count: int) -> list[LogEntry]:
    """`count` entries of the shapes above, in turn; what each should read as."""
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(count):
            pipe.execute_command("XADD", KEYS.log(ref), "*", *SHAPES[n % len(SHAPES)])
        ids: list[Any] = await pipe.execute()
    return [LogEntry(i.decode(), *EXPECTED[n % len(EXPECTED)]) for n, i in enumerate(ids)]


@pytest.mark.skipif(ON_CLUSTER, reason="a cluster client routes by the str name: its replies come parsed")
async def test_a_pipelined_xrange_named_as_bytes_comes_as_the_server_sent_it(aredis: Redis) -> None:
    ref = AccountRef("t", "e", "raw")
    await write(aredis, ref, 2)
    log_reader = reader(aredis, as_sent=True)
    async with aredis.pipeline(transaction=False) as pipe:
        pipe.execute_command(log_reader.xrange, KEYS.log(ref), "-", "+")
        (page,) = await pipe.execute()
    assert log_reader.xrange == b"XRANGE" and [type(fields) for _, fields in page] == [list, list]


async def test_many_accounts_first_pages_read_alike_as_sent_and_parsed(aredis: Redis) -> None:
    refs = [AccountRef("t", "e", f"c{n}") for n in range(6)]
    refs = [ref for ref in refs if KEYS.partition_of(ref) == KEYS.partition_of(refs[0])]  # one partition, as asked
    expected = [await write(aredis, ref, 3 + 5 * n) for n, ref in enumerate(refs)]
    assert await reader(aredis, as_sent=True).logs(refs) == expected
    assert await reader(aredis, as_sent=False).logs(refs) == expected


async def test_a_stream_longer_than_a_page_reads_alike_as_sent_and_parsed(aredis: Redis) -> None:
    ref = AccountRef("t", "e", "long")
    expected = await write(aredis, ref, 2 * LOG_PAGE + 5)
    middle = expected[LOG_PAGE // 2].position
    for as_sent in (True, False):
        log_reader = reader(aredis, as_sent)
        assert await log_reader.logs([ref]) == [expected]
        assert await log_reader.log(ref) == expected
        assert await log_reader.log(ref, after=middle) == expected[LOG_PAGE // 2 + 1:]
