"""One connection to a single Redis server shared by concurrent callers, without a pool: the commands callers send
while the event loop is busy with other work go out together in one write once it is done (`loop.call_soon`), and
the replies are handed back in order (a server answers a connection's commands in the order it read them), so
callers never wait for one another's round trips and never see one another's replies.

For the API's single append (bench/PROFILE.md): through redis-py's generic command path (pool checkout and release,
its retry wrapper, a timeout task per write, observability hooks) the call cost more than everything else on the
route. Only a plain TCP client of one server qualifies (`PipelinedConnection.of`): RESP2, no decoding, a password
and a database at most; anything else (TLS, a unix socket, a credential provider…) keeps redis-py's path; a
cluster gets one per primary (store/node_links.py). A batch (`execute_all`; `run_together` there) costs one waiter
for all its commands, where redis-py's pipeline costs its whole command path, a timeout included, a command: a
rebuild's page reads and writes (projector/replay.py).

A connection that fails (closed, reset, refused, or no reply for `socket_timeout` while commands wait) fails every
caller waiting on it with redis-py's ConnectionError or TimeoutError, and the next call opens a new one. What a
failed command did is unknown, as with any client; store/scripts.py runs it again through redis-py's path, which
retries and reconnects as every other command does.
"""

import asyncio
import socket
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import AskError, ClusterDownError, DataError, InvalidResponse, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from store.connect import PackedInC

_PENDING = object()  # hiredis: no complete reply in what was fed so far
REDIRECTED = (AskError, TryAgainError, ClusterDownError)
"""A cluster node's replies to a command it did not run (MOVED is an AskError): the client, which follows the
cluster, runs it."""


def _packed(*args: Any) -> bytes:
    try:
        packed: bytes = hiredis.pack_command(args)
    except TypeError as exc:  # as redis-py reports an argument it cannot send
        raise DataError(str(exc)) from exc
    return packed


class _Batch:
    """The waiter of a batch of commands (`PipelinedConnection.execute_all`), in `_Replies.waiting` once per command:
    collects their replies, an error reply as its exception, and answers them together; a failure of the
    connection (or a reply redis-py treats as one) fails the batch."""

    __slots__ = ("count", "future", "replies")

    def __init__(self, future: "asyncio.Future[list[Any]]", count: int) -> None:
        self.future, self.count = future, count
        self.replies: list[Any] = []

    def done(self) -> bool:
        return self.future.done()

    def set_result(self, reply: Any) -> None:
        self.replies.append(reply)
        if len(self.replies) == self.count:
            self.future.set_result(self.replies)

    def set_exception(self, error: BaseException) -> None:
        if isinstance(error, ResponseError) and not isinstance(error, RedisConnectionError):
            self.set_result(error)
        elif not self.future.done():
            self.future.set_exception(error)


class _Replies(asyncio.Protocol):
    """The connection's transport and its waiting callers, one future each (a batch: its waiter once per command),
    in the order their commands were sent."""

    def __init__(self, timeout: float | None) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Any] | _Batch] = deque()
        self.closed = False
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=BaseParser.parse_error,
                                      notEnoughData=_PENDING)
        self._timeout = timeout
        self._watchdog: asyncio.TimerHandle | None = None
        self._replies = 0  # replies read so far: the watchdog's sign of progress
        self._outgoing: list[bytes] = []  # commands not written yet (`send`)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        """Queue a command; the commands queued while the loop runs other callbacks go out in one write."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append(reply)
        self._queue(packed)
        return reply

    def send_all(self, packed: bytes, count: int) -> "asyncio.Future[list[Any]]":
        """Queue `count` commands packed together; their replies come together."""
        replies: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.waiting.extend([_Batch(replies, count)] * count)
        self._queue(packed)
        return replies

    def _queue(self, packed: bytes) -> None:
        loop = asyncio.get_running_loop()
        if self._outgoing:
            self._outgoing.append(packed)
        else:
            self._outgoing = [packed]
            loop.call_soon(self._flush)
        if self._watchdog is None and self._timeout is not None:
            self._arm(self._replies)

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(outgoing))

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not _PENDING:
            self._replies += 1
            if not self.waiting:
                self.fail(InvalidResponse("a reply arrived that no command asked for"))
                return
            waiter = self.waiting.popleft()
            if waiter.done():  # its caller was cancelled: the reply is read and dropped
                continue
            if isinstance(reply, Exception):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"Connection closed by server or lost: {exc!r}"))

    def _arm(self, seen: int) -> None:
        assert self._timeout is not None
        self._watchdog = asyncio.get_running_loop().call_later(self._timeout, self._check, seen)

    def _check(self, seen: int) -> None:
        """Every `timeout` while commands wait: fail the connection if no reply came since the previous check."""
        self._watchdog = None
        if not self.waiting:
            return
        if self._replies == seen:
            self.fail(RedisTimeoutError("Timeout reading from socket"))
            return
        self._arm(self._replies)

    def fail(self, error: Exception) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()


class PipelinedConnection:
    """`execute` sends a command over the one connection (opened on first use, and again after a failure) and
    answers its reply; `aclose` closes it, failing what still waits."""

    def __init__(self, host: str, port: int, *, db: int = 0, username: str | None = None,
                 password: str | None = None, socket_timeout: float | None = None,
                 connect_timeout: float | None = None) -> None:
        self.host, self.port, self.db = host, port, db
        self.username, self.password = username, password
        self.socket_timeout, self.connect_timeout = socket_timeout, connect_timeout
        self._open: _Replies | None = None
        self._opening = asyncio.Lock()
        self._attempts = 0  # connection attempts finished
        self._failure: str | None = None  # why the last one failed

    @classmethod
    def of(cls, redis: Redis) -> "PipelinedConnection | None":
        """A connection to the server `redis` talks to, with its options; None when `redis` is not a plain TCP
        client of one server using RESP2 and raw bytes (see the module's docstring)."""
        if isinstance(redis, RedisCluster) or not isinstance(redis, Redis):
            return None
        pool = redis.connection_pool
        options = pool.connection_kwargs
        return cls.like(pool.connection_class, options, options.get("host", "localhost"), options.get("port", 6379))

    @classmethod
    def like(cls, kind: type, options: dict[str, Any], host: str, port: int) -> "PipelinedConnection | None":
        """A connection to `host:port` with the options a redis-py connection of class `kind` is built with (for a
        cluster primary: the cluster client's own); None when they ask for more than this connection does."""
        if (kind not in (Connection, PackedInC) or options.get("decode_responses")
                or options.get("protocol") not in (None, 2, "2") or options.get("credential_provider") is not None
                or options.get("client_name") or options.get("redis_connect_func") is not None):
            return None
        like = kind(**options)  # not connected: the timeouts redis-py's own would use (5 s unset)
        return cls(host, int(port), db=int(options.get("db") or 0), username=options.get("username"),
                   password=options.get("password"), socket_timeout=like.socket_timeout,
                   connect_timeout=like.socket_connect_timeout)

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply (an error reply raised as redis-py raises it)."""
        packed = _packed(*args)
        replies = self._open
        if replies is None or replies.closed:
            replies = await self._reopen()
        return await replies.send(packed)

    async def execute_all(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send `commands` in one write and return their replies in order, an error reply as its exception (in
        place, not raised). One waiter for them all, where `execute` costs a future and a callback a command."""
        if not commands:
            return []
        packed = b"".join([_packed(*command) for command in commands])
        replies = self._open
        if replies is None or replies.closed:
            replies = await self._reopen()
        return await replies.send_all(packed, len(commands))

    async def aclose(self) -> None:
        replies, self._open = self._open, None
        if replies is not None:
            replies.fail(RedisConnectionError("the connection was closed"))

    async def _reopen(self) -> _Replies:
        """The open connection, opening it if needed: callers arriving meanwhile wait for that one attempt and share
        its outcome (a failed attempt fails them all, rather than each trying again in turn)."""
        attempts = self._attempts
        async with self._opening:
            if self._open is not None and not self._open.closed:
                return self._open
            if self._attempts != attempts and self._failure is not None:
                raise RedisConnectionError(self._failure)
            try:
                self._open = await self._connected()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                self._failure = str(exc)
                raise
            finally:
                self._attempts += 1
            self._failure = None
            return self._open

    async def _connected(self) -> _Replies:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                transport, replies = await loop.create_connection(lambda: _Replies(self.socket_timeout),
                                                                  self.host, self.port)
                try:
                    await self._greet(transport, replies)
                except BaseException:
                    transport.close()
                    raise
        except TimeoutError:
            raise RedisTimeoutError(f"Timeout connecting to {self.host}:{self.port}") from None
        except OSError as exc:
            raise RedisConnectionError(f"Error connecting to {self.host}:{self.port}: {exc}") from exc
        return replies

    async def _greet(self, transport: asyncio.Transport, replies: _Replies) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # as redis-py's connections
        if self.password is not None:
            credentials = (self.username, self.password) if self.username else (self.password,)
            await replies.send(_packed("AUTH", *credentials))
        if self.db:
            await replies.send(_packed("SELECT", self.db))
