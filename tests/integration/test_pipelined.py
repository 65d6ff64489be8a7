"""store/pipelined.py: concurrent callers share one connection and each gets its own reply, in any interleaving; a
failed or silent connection fails its waiting callers with redis-py's errors and the next call opens a new one; a
script call that fails on it runs again through the client (store/scripts.py)."""

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

from store.connect import connect
from store.node_links import run_together
from store.pipelined import PipelinedConnection
from store.scripts import Script

pytestmark = pytest.mark.skipif(bool(os.environ.get("TALLY_TEST_CLUSTER")),
                                reason="a cluster keeps redis-py's client (PipelinedConnection.of answers None)")


@pytest.fixture
async def pipelined(aredis: Redis) -> AsyncIterator[PipelinedConnection]:
    connection = PipelinedConnection.of(aredis)
    assert connection is not None
    try:
        yield connection
    finally:
        await connection.aclose()


async def client_id(connection: PipelinedConnection) -> int:
    return int(await connection.execute("CLIENT", "ID"))


async def test_concurrent_callers_share_one_connection_and_each_gets_its_own_reply(
    pipelined: PipelinedConnection,
) -> None:
    first = await client_id(pipelined)
    values = [f"v{n}".encode() * (n % 7 + 1) for n in range(500)]
    replies = await asyncio.gather(*(pipelined.execute("ECHO", value) for value in values))
    assert replies == values
    assert await client_id(pipelined) == first


async def test_an_error_reply_raises_as_redis_py_raises_it_and_the_connection_goes_on(
    pipelined: PipelinedConnection,
) -> None:
    first = await client_id(pipelined)
    with pytest.raises(NoScriptError):
        await pipelined.execute("EVALSHA", "0" * 40, 0)
    with pytest.raises(ResponseError, match="boom"):
        await pipelined.execute("EVAL", "return redis.error_reply('boom')", 0)
    assert await pipelined.execute("EVAL", "return {1, {'a', 'b'}}", 0) == [1, [b"a", b"b"]]
    assert await client_id(pipelined) == first


async def test_a_killed_connection_fails_its_waiting_callers_and_the_next_call_reconnects(
    aredis: Redis, pipelined: PipelinedConnection,
) -> None:
    first = await client_id(pipelined)
    waiting = [asyncio.ensure_future(pipelined.execute("BLPOP", f"nothing-{n}", 5)) for n in range(3)]
    while (await aredis.info("clients"))["blocked_clients"] < 1:  # the first BLPOP holds the others back
        await asyncio.sleep(0.01)
    await aredis.client_kill_filter(_id=first)
    for caller in waiting:
        with pytest.raises(ConnectionError):
            await caller
    assert await pipelined.execute("ECHO", b"again") == b"again"
    assert await client_id(pipelined) != first


async def test_a_cancelled_caller_does_not_shift_the_replies_of_the_others(pipelined: PipelinedConnection) -> None:
    slow = asyncio.ensure_future(pipelined.execute("BLPOP", "nothing", 0.2))
    await asyncio.sleep(0)
    slow.cancel()
    assert await pipelined.execute("ECHO", b"mine") == b"mine"  # read after the cancelled caller's nil


async def test_no_reply_within_the_socket_timeout_fails_the_connection(clean_redis: str) -> None:
    redis = Redis.from_url(clean_redis, socket_timeout=0.2)
    connection = PipelinedConnection.of(redis)
    assert connection is not None
    try:
        with pytest.raises(TimeoutError):
            await connection.execute("BLPOP", "nothing", 2)
        assert await connection.execute("ECHO", b"after") == b"after"
    finally:
        await connection.aclose()
        await redis.aclose()


@pytest.mark.parametrize("options", [{}, {"socket_timeout": 2.5}, {"socket_timeout": None}])
async def test_it_waits_for_a_reply_as_long_as_the_clients_own_connections(clean_redis: str,
                                                                         options: dict[str, float | None]) -> None:
    """A URL without a timeout gives redis-py's connections their default (5 s); this one takes the same, never an
    unbounded wait that redis-py would not have."""
    redis = Redis.from_url(clean_redis, **options)
    own = redis.connection_pool.make_connection()
    connection = PipelinedConnection.of(redis)
    assert connection is not None
    try:
        assert (connection.socket_timeout, connection.connect_timeout) == (own.socket_timeout,
                                                                           own.socket_connect_timeout)
        if not options:
            assert connection.socket_timeout == 5
    finally:
        await connection.aclose()
        await redis.aclose()


async def test_the_database_of_the_client_is_selected(clean_redis: str) -> None:
    redis = Redis.from_url(clean_redis, db=3)
    connection = PipelinedConnection.of(redis)
    assert connection is not None
    try:
        await connection.execute("SET", "pipelined-db-test", b"3")
        assert await redis.get("pipelined-db-test") == b"3"
    finally:
        await redis.delete("pipelined-db-test")
        await connection.aclose()
        await redis.aclose()


async def test_only_a_plain_tcp_client_of_one_server_qualifies(clean_redis: str) -> None:
    assert PipelinedConnection.of(connect(clean_redis)) is not None
    for other in (Redis.from_url(clean_redis, decode_responses=True), Redis.from_url(clean_redis, protocol=3),
                  Redis.from_url(clean_redis, client_name="x"), Redis(unix_socket_path="/nowhere")):
        assert PipelinedConnection.of(other) is None


async def test_a_script_call_the_connection_fails_runs_again_through_the_client(aredis: Redis) -> None:
    script = Script(aredis, "return redis.call('INCR', KEYS[1])")
    script.connection = PipelinedConnection("127.0.0.1", 1, connect_timeout=1)  # nothing listens there
    assert await script(keys=["counted"]) == 1
    script.connection = PipelinedConnection.of(aredis)
    assert script.connection is not None
    try:
        await aredis.script_flush()
        assert await script(keys=["counted"]) == 2  # NOSCRIPT: run with its source
        assert await script(keys=["counted"]) == 3  # by SHA again
    finally:
        await script.connection.aclose()


async def test_callers_waiting_for_a_connection_attempt_share_its_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = PipelinedConnection("127.0.0.1", 1, connect_timeout=1)  # nothing listens there
    attempts = []
    connected = connection._connected

    async def counted() -> Any:
        attempts.append(1)
        return await connected()

    monkeypatch.setattr(connection, "_connected", counted)
    outcomes = await asyncio.gather(*(connection.execute("PING") for _ in range(20)), return_exceptions=True)
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    assert len(attempts) == 1
    with pytest.raises(ConnectionError):
        await connection.execute("PING")  # a later call tries again
    assert len(attempts) == 2


async def test_a_batch_gets_its_replies_in_order_among_single_callers(pipelined: PipelinedConnection) -> None:
    """An error reply stays in its place; single calls sent meanwhile get their own replies."""
    batch = asyncio.ensure_future(pipelined.execute_all(
        [("ECHO", b"a"), ("EVAL", "return redis.error_reply('boom')", 0), ("ECHO", b"c")]))
    single = asyncio.ensure_future(pipelined.execute("ECHO", b"single"))
    first, failed, last = await batch
    assert (first, last, await single) == (b"a", b"c", b"single")
    assert isinstance(failed, ResponseError) and "boom" in str(failed)
    assert await pipelined.execute_all([]) == []


async def test_a_cancelled_batch_does_not_shift_the_replies_of_others(pipelined: PipelinedConnection) -> None:
    slow = asyncio.ensure_future(pipelined.execute_all([("BLPOP", "nothing", 0.2), ("ECHO", b"theirs")]))
    await asyncio.sleep(0)
    slow.cancel()
    assert await pipelined.execute_all([("ECHO", b"mine"), ("ECHO", b"too")]) == [b"mine", b"too"]


async def test_a_killed_connection_fails_a_waiting_batch(aredis: Redis, pipelined: PipelinedConnection) -> None:
    first = await client_id(pipelined)
    waiting = asyncio.ensure_future(pipelined.execute_all([("BLPOP", "nothing", 5), ("ECHO", b"x")]))
    while (await aredis.info("clients"))["blocked_clients"] < 1:
        await asyncio.sleep(0.01)
    await aredis.client_kill_filter(_id=first)
    with pytest.raises(ConnectionError):
        await waiting


async def test_commands_run_together_in_a_transaction_over_the_connection_or_through_the_client(
    aredis: Redis, pipelined: PipelinedConnection,
) -> None:
    """The replies are EXEC's; an error reply is raised; a connection that fails hands the batch to redis-py."""
    unreachable = PipelinedConnection("127.0.0.1", 1, connect_timeout=1)  # nothing listens there
    for direct in (pipelined, unreachable, None):
        await aredis.delete("{t}h", "{t}z")
        replies = await run_together(aredis, direct, [("HSET", "{t}h", "a", b"1", "b", 2), ("ZADD", "{t}z", 5, b"m"),
                                                      ("HGETALL", "{t}h")], transaction=True)
        assert replies[:2] == [2, 1] and await aredis.hgetall("{t}h") == {b"a": b"1", b"b": b"2"}
        with pytest.raises(ResponseError):
            await run_together(aredis, direct, [("SET", "{t}s", b"v"), ("HSET", "{t}z", "a", b"1")],
                               transaction=True)  # a wrong type: the error EXEC holds
        with pytest.raises(ResponseError):
            await run_together(aredis, direct, [("SET", "{t}s", b"v"), ("HSET", "{t}h")], transaction=True)
        assert await run_together(aredis, direct, [("ECHO", b"x"), ("ZSCORE", "{t}z", b"m")]) in (
            [b"x", b"5"], [b"x", 5.0])  # a redis-py pipeline parses ZSCORE's reply
