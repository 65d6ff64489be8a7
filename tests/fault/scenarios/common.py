"""What every scenario shares: its own redis-server, the store objects on it, and accounts placed in partitions."""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from domain.commands import AnyCommand
from domain.errors import ValidationFailed
from domain.identity import AccountRef
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from store.projection import Projection
from tests.support.crash_writer import Writer
from tests.support.redis_server import RedisServer, have_redis_server

DEDUP_TTL = 3600


class Stopped(Exception):
    """Raised into a writer lane once the scenario asked the writer to stop."""


@dataclass
class StoppableWriter(Writer):
    """The crash test's writer (it remembers every acknowledged append), stoppable between two appends: a task
    cancelled inside a redis-py 8.1 command can keep running, so lanes check a flag instead."""

    stopping: bool = False

    async def execute(self, ref: AccountRef, command: AnyCommand, ids: list[str], dedup: Dedup | None) -> None:
        if self.stopping:
            raise Stopped
        await super().execute(ref, command, ids, dedup)

    async def bulk(self) -> None:
        if self.stopping:
            raise Stopped
        await super().bulk()

    async def top_up(self, ref: AccountRef) -> None:
        """A short-lived lot whose expiry passed while the writer was held up (writes paused, Redis restarting) is
        refused by decide(), before anything is appended: counted, as a producer would see a 400."""
        try:
            await super().top_up(ref)
        except ValidationFailed as refused:
            if "expiry" not in refused.message:
                raise
            self.stats["expired before appended"] += 1

    async def lane(self, refs: list[AccountRef], events: int, deadline: float) -> None:
        with contextlib.suppress(Stopped):
            await super().lane(refs, events, deadline)

    async def run_lanes(self, seconds: float, lanes: int = 4) -> None:
        """Write from `lanes` concurrent producers (wallets created already) until stopped or `seconds` passed."""
        deadline = asyncio.get_running_loop().time() + seconds
        lanes = min(lanes, len(self.refs))
        await asyncio.gather(*(self.lane(self.refs[i::lanes], 10**9, deadline) for i in range(lanes)))

    async def stop(self, running: "asyncio.Task[Any]", timeout: float = 15) -> None:
        """Let each lane finish the append it is in, then return (the task has ended)."""
        self.stopping = True
        await asyncio.wait([running], timeout=timeout)
        assert running.done(), "the writer did not stop"
        failure = None if running.cancelled() else running.exception()
        if failure is not None and not isinstance(failure, Stopped):
            raise failure

    def acked_refs(self) -> dict[str, AccountRef]:
        return {event_id: ref for event_id, (ref, _) in self.acked.items()}


@dataclass
class Stage:
    server: RedisServer
    redis: Redis
    keys: Keys
    store: EventStore
    projection: Projection
    logs: Path

    @property
    def url(self) -> str:
        return self.server.url

    def writer(self, rng: random.Random, accounts: int | Sequence[AccountRef]) -> StoppableWriter:
        refs = [AccountRef("tenant_f", "env_f", f"cust_{i:03d}") for i in range(accounts)] \
            if isinstance(accounts, int) else list(accounts)
        return StoppableWriter(self.store, rng, refs)


@contextlib.asynccontextmanager
async def stage(tmp_path: Path, partitions: int, fsync: str = "always") -> AsyncIterator[Stage]:
    """A redis-server of the scenario's own (never the shared one), stopped whatever happens."""
    assert have_redis_server(), "redis-server is not on PATH"
    logs = tmp_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    server = RedisServer(tmp_path / "redis", fsync)
    server.start()
    redis = Redis.from_url(server.url)
    keys = Keys(partitions)
    try:
        yield Stage(server, redis, keys, EventStore(redis, keys, DEDUP_TTL), Projection(redis, keys), logs)
    finally:
        with contextlib.suppress(Exception):
            await redis.aclose()
        server.kill()


def refs_in(keys: Keys, partition: int, count: int, tenant: str = "tenant_f") -> list[AccountRef]:
    """`count` account refs that all hash to `partition`."""
    found: list[AccountRef] = []
    n = 0
    while len(found) < count:
        ref = AccountRef(tenant, "env_f", f"cust_p{partition}_{n:04d}")
        if keys.partition_of(ref) == partition:
            found.append(ref)
        n += 1
    return found
