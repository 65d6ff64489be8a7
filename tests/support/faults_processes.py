"""Instruments for fault scenarios on real processes: which Redis connections a process owns, commits caught as
they land (keyspace notifications), commits caught before they run (CLIENT PAUSE WRITE), torn-state checks (one
slot at a time, so on a cluster too), and one-off `tally` commands run as subprocesses (always reaped)."""

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from domain.codec import encode_ref
from domain.identity import AccountRef
from store.keys import Keys
from store.positions import ORIGIN, is_after, text
from tests.support.projectors import ENTRY, ProjectorProcesses

COMMIT_ARGV_BYTES = 1500  # a pending EVALSHA this large is a commit (it carries snapshots), not a lease or read


def tally_env(redis_url: str, partitions: int, **settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TALLY_")}
    env.update({"TALLY_REDIS_URL": redis_url, "TALLY_PARTITIONS": str(partitions)})
    env.update({f"TALLY_{name.upper()}": value for name, value in settings.items()})
    return env


class TrackedProjectors(ProjectorProcesses):
    """ProjectorProcesses that also remember each process id, to find its Redis connections."""

    def __init__(self, redis_url: str, partitions: int, log_dir: Path, **settings: str) -> None:
        super().__init__(redis_url, partitions, log_dir, **settings)
        self.pids: dict[str, int] = {}

    def start(self, cold: bool = False) -> str:
        if cold:
            name = super().start(cold=True)
            self.pids[name] = self.cold[name].pid
            return name
        self.started += 1
        name = f"projector-{self.started:03d}"
        self.pids[name] = int(self._ask("start", name))
        self.warm.add(name)
        return name

    def log_count(self, needle: str) -> int:
        return sum(path.read_text(errors="replace").count(needle) for path in self.log_dir.glob("projector-*.log"))

    async def leases_of(self, redis: Redis, name: str) -> list[int]:
        holders = [await redis.get(self.keys.lease(p)) for p in range(self.keys.partitions)]
        return [p for p, h in enumerate(holders) if h is not None and text(h).startswith(f"{name}#")]


def redis_ports(pid: int, server_port: int) -> set[int]:
    """Local TCP ports of the process's connections to the Redis on `server_port` (Linux /proc)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in rows.readlines()[1:]:
                cols = row.split()
                if cols[9] in inodes and int(cols[2].rsplit(":", 1)[1], 16) == server_port:
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


async def pending_commit(redis: Redis, ports: set[int]) -> bool:
    """True when one of these connections has a commit EVALSHA held back by CLIENT PAUSE WRITE."""
    for client in await redis.client_list():
        port = int(str(client.get("addr", ":0")).rsplit(":", 1)[1])
        if (port in ports and "b" in str(client.get("flags", "")) and client.get("cmd") == "evalsha"
                and int(client.get("argv-mem", 0)) > COMMIT_ARGV_BYTES):
            return True
    return False


@contextlib.asynccontextmanager
async def writes_paused(redis: Redis, max_ms: int) -> AsyncIterator[None]:
    """CLIENT PAUSE WRITE: reads go on, every write and script waits (and keys do not expire) until unpaused."""
    await redis.client_pause(max_ms, all=False)
    try:
        yield
    finally:
        await redis.client_unpause()


class CommitWatch:
    """Keyspace notifications on every checkpoint key: each arrives just after a commit script ran."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.channels = {f"__keyspace@0__:{keys.checkpoint(p)}".encode(): p for p in range(keys.partitions)}
        self.pubsub: Any = None

    async def open(self) -> None:
        await self.redis.config_set("notify-keyspace-events", "K$")
        self.pubsub = self.redis.pubsub()
        await self.pubsub.subscribe(*self.channels)

    async def drain(self) -> None:
        while await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0) is not None:
            pass

    async def next_commit_by(self, name: str, timeout: float) -> bool:
        """Wait for a commit by the process `name` (the lease holder of the committed partition)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self.drain()
        while (left := deadline - loop.time()) > 0:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, 0.2))
            if message is None:
                continue
            holder: Any = await self.redis.get(self.keys.lease(self.channels[message["channel"]]))
            if holder is not None and text(holder).startswith(f"{name}#"):
                return True
        return False

    async def close(self) -> None:
        if self.pubsub is not None:
            await self.pubsub.aclose()


async def torn_commits(redis: Redis, keys: Keys, refs: Sequence[AccountRef]) -> list[str]:
    """Read each partition's checkpoint, feed and snapshot positions in one MULTI (one slot: a commit is one script
    on one partition, so it works on a cluster too) and list the accounts whose snapshot does not stop exactly at
    their last feed entry at or below the checkpoint (a commit half applied). Needs the whole feed."""
    by_partition: dict[int, list[AccountRef]] = {}
    for ref in refs:
        by_partition.setdefault(keys.partition_of(ref), []).append(ref)
    torn = []
    for partition, members in sorted(by_partition.items()):
        async with redis.pipeline(transaction=True) as pipe:
            pipe.get(keys.checkpoint(partition))
            pipe.xrange(keys.feed(partition))
            for ref in members:
                pipe.hget(keys.snapshot(ref), "p")
            replies: list[Any] = await pipe.execute()
        checkpoint, last = text(replies[0] or ORIGIN), {}
        for entry_id, fields in replies[1]:
            if is_after(text(entry_id), checkpoint):
                break
            last[fields[b"c"]] = text(fields[b"l"])
        for ref, position in zip(members, replies[2:], strict=True):
            expected, actual = last.get(encode_ref(ref), ORIGIN), text(position or ORIGIN)
            if expected != actual:
                torn.append(f"{ref.customer_id}: snapshot at {actual}, checkpoint covers up to {expected}")
    return torn


async def run_tally(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run one `tally ...` command to completion in a fresh interpreter; killed if it outlives `timeout`."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", ENTRY, *args, env=env,
                                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return int(process.returncode or 0), out.decode(errors="replace")
