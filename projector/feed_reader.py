"""One XREAD for the feeds of every partition a projector folds, instead of one per partition (single server).

Each partition's worker asks for its feed after its checkpoint (`read`), as it would ask Redis, and gets what one
XREAD of that feed would give it: up to `count` entries, or none once it has waited `block_ms`. The reader gathers
the requests into rounds and reads once for a round, naming every waiting feed: when every partition it serves (the
partitions whose lease the projector holds, `members`) is waiting, or GATHER_S after the round began when some are
still busy (folding, committing, running their clock). It lets Redis block (until any of the feeds has an entry, up
to the nearest deadline) only when every partition it serves is waiting, so no worker ever comes back while a read
is blocked without its feed in it; while some are busy it reads without blocking, at most once per GATHER_S.

A failed read fails every request of its round (each worker's turn raises, as its own read would have). On a Redis
Cluster one XREAD cannot name feeds of different partitions (each partition's keys have their own hash tag), so the
projector does not use the reader there: each worker reads its own feed (cli/wiring.py).
"""

import asyncio
import math
from collections.abc import Callable

from store.projection import FeedEntry, Projection

GATHER_S = 0.005
"""How long a round waits for the partitions still busy before reading for those already waiting."""


class _Request:
    __slots__ = ("after", "deadline", "future")

    def __init__(self, after: str, deadline: float, future: "asyncio.Future[list[FeedEntry]]") -> None:
        self.after, self.deadline, self.future = after, deadline, future


class FeedReader:
    def __init__(self, projection: Projection, count: int, members: Callable[[], set[int]]) -> None:
        self.projection, self.count, self.members = projection, count, members
        self.pending: dict[int, _Request] = {}
        self.arrived = asyncio.Event()
        self.pump: asyncio.Task[None] | None = None
        self.reads = 0  # XREADs sent, for tests and diagnostics

    async def read(self, partition: int, after: str, block_ms: int) -> list[FeedEntry]:
        """The partition's entries after `after` (at most `count`), or [] when none came within `block_ms`."""
        loop = asyncio.get_running_loop()
        request = _Request(after, loop.time() + block_ms / 1000, loop.create_future())
        self.pending[partition] = request
        self.arrived.set()
        if self.pump is None or self.pump.done():
            self.pump = asyncio.create_task(self._run())
        try:
            return await request.future
        finally:
            if self.pending.get(partition) is request:  # cancelled while waiting
                del self.pending[partition]

    async def _run(self) -> None:
        try:
            while self.pending:
                await self._gather()
                await self._round()
        except BaseException as exc:  # a bug or a cancellation: nobody may wait for ever
            self._fail(dict(self.pending), exc if isinstance(exc, Exception) else RuntimeError("feed reader stopped"))
            raise

    async def _gather(self) -> None:
        """Wait until every partition served is waiting, or GATHER_S."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)  # the workers that become ready in this loop iteration join the round
        until = loop.time() + GATHER_S
        while not self.members() <= self.pending.keys():
            self.arrived.clear()
            remaining = until - loop.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _round(self) -> None:
        loop = asyncio.get_running_loop()
        requests = dict(self.pending)
        if not requests:
            return
        block_ms: int | None = None
        if self.members() <= requests.keys():
            nearest = min(request.deadline for request in requests.values())
            block_ms = max(1, math.ceil((nearest - loop.time()) * 1000))
        self.reads += 1
        try:
            found = await self.projection.read_feeds({p: r.after for p, r in requests.items()}, self.count, block_ms)
        except Exception as exc:
            self._fail(requests, exc)
            return
        now = loop.time()
        for partition, request in requests.items():
            entries = found.get(partition, [])
            if entries or now >= request.deadline:
                self._settle(partition, request, entries)

    def _settle(self, partition: int, request: _Request, entries: list[FeedEntry]) -> None:
        if self.pending.get(partition) is request:
            del self.pending[partition]
        if not request.future.done():
            request.future.set_result(entries)

    def _fail(self, requests: dict[int, _Request], exc: Exception) -> None:
        for partition, request in requests.items():
            if self.pending.get(partition) is request:
                del self.pending[partition]
            if not request.future.done():
                request.future.set_exception(exc)
