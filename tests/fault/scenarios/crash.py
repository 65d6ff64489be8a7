"""Scenario 1: real `tally projector` processes SIGKILLed at chosen points of their batch cycle, under load.

Three kill points, taken in turn (a kill that missed its point is tried again at the same point, bounded):
- after reading: CLIENT PAUSE WRITE holds every write back; once the victim's commit EVALSHA is waiting in Redis
  (it has read its batch and folded it in memory) it is SIGKILLed, then writes resume;
- after applying: a keyspace notification says a commit by the victim just ran; it is SIGKILLed at once;
- at a random instant while commits flow. The commit (snapshots + clock schedule + alerts + checkpoint + count)
  is one Lua script, so "between the snapshot write and the checkpoint" is not an instant a kill can hit:
  after every kill, one MULTI per partition reads its checkpoint, feed and snapshots and counts half-applied commits.
"""

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from redis.asyncio import Redis

from tests.fault.scenarios.common import stage
from tests.support.crash_writer import Monitor, wait_settled
from tests.support.faults import Row, audit
from tests.support.faults_processes import (
    CommitWatch,
    TrackedProjectors,
    pending_commit,
    redis_ports,
    torn_commits,
    writes_paused,
)

PARTITIONS = 8
LEASE_TTL_MS = 600


async def kill_after_read(procs: TrackedProjectors, redis: Redis, port: int, victim: str) -> bool:
    """Freeze the victim briefly (a backlog builds up in its partitions), hold every write back, let it go on: it
    reads the backlog and folds it, and its commit waits in Redis. Kill it there; False if it never got there."""
    pid = procs.pids[victim]
    procs.pause(victim, True)
    await asyncio.sleep(LEASE_TTL_MS / 6000)  # the freeze is the fault (shorter than its lease), not a wait
    async with writes_paused(redis, 3000):  # under the clients' 5 s socket timeout: the writer waits on it
        procs.pause(victim, False)
        deadline = time.monotonic() + 2.5  # polled; a miss (a loaded machine) is tried again by the caller
        while time.monotonic() < deadline:
            if await pending_commit(redis, redis_ports(pid, port)):
                procs.kill(victim)
                return True
            await asyncio.sleep(0.003)
    return False


async def run(tmp_path: Path, kills: int, accounts: int, seconds: float, seed: int) -> Row:
    """`kills` kills, as many at each point (a missed kill is tried again at the same point, up to 3 * kills
    tries); the writer writes until they are done (`seconds` caps it: a stall, not the plan)."""
    started = time.monotonic()
    rng = random.Random(seed)
    async with stage(tmp_path, PARTITIONS) as st:
        writer = st.writer(rng, accounts)
        procs = TrackedProjectors(st.url, PARTITIONS, st.logs, lease_ttl_ms=str(LEASE_TTL_MS), block_ms="20",
                                  batch_size="64", clock_interval_ms="200", log_level="WARNING",
                                  trim_every_batches="0")
        watch, monitor, stop_monitor = CommitWatch(st.redis, st.keys), Monitor(st.redis, st.keys, writer.refs), \
            asyncio.Event()
        sampling = asyncio.create_task(monitor.run(stop_monitor))
        writing = asyncio.create_task(writer.run(events=10**6, seconds=seconds))
        done: Counter[str] = Counter()
        torn: list[str] = []
        try:
            await procs.open()
            await watch.open()
            modes = itertools.cycle(("after-read", "after-commit", "random"))
            attempts, mode = 0, next(modes)
            while sum(hits(done).values()) < kills and attempts < 3 * kills and not writing.done():
                attempts += 1
                assert procs.exited_on_their_own() == {}
                while len(procs.running) < 2:
                    procs.start(cold=procs.started == 0)
                victim = rng.choice(procs.running)
                await procs.wait_joined(st.redis, victim)
                await poll_until(partial(procs.leases_of, st.redis, victim), timeout=30)
                if mode == "after-read":
                    hit = await kill_after_read(procs, st.redis, st.server.port, victim)
                elif mode == "after-commit":
                    hit = await watch.next_commit_by(victim, timeout=20.0)  # polled: commits flow while writing
                    if hit:
                        procs.kill(victim)
                else:
                    await asyncio.sleep(rng.uniform(0, 0.3))
                    procs.kill(victim)
                    hit = True
                done[mode if hit else f"{mode} missed"] += 1
                if hit:
                    torn.extend(await torn_commits(st.redis, st.keys, writer.refs))
                    mode = next(modes)
            await writer.stop(writing)
            assert procs.exited_on_their_own() == {}
            for name in procs.running:
                procs.kill(name)
            final = procs.start()
            await procs.wait_joined(st.redis, final)
            await wait_settled(st.store, st.projection, writer, timeout=120)  # polled: the bound marks a stall
            stop_monitor.set()
            await sampling
            torn.extend(await torn_commits(st.redis, st.keys, writer.refs))
            result = await audit(st.store, st.projection, writer.acked_refs())
        finally:
            writer.stopping = True
            stop_monitor.set()
            await asyncio.wait([sampling, writing], timeout=15)
            await watch.close()
            procs.close()
    row = Row("1 projector SIGKILL (read/commit/random)", faults=sum(hits(done).values()), note=(
        f"kills {dict(done)}; commit = one Lua script, so no kill lands between snapshot write and checkpoint: "
        f"half-applied commits seen in a MULTI read after each kill: {len(torn)}; checkpoint or snapshot positions "
        f"gone back ({monitor.samples} samples): {len(monitor.backwards)}"))
    result.fill(row)
    row.seconds = time.monotonic() - started
    row.drift += len(torn)
    row.problems += [f"position went back: {b}" for b in monitor.backwards[:3]]
    row.problems += [f"no kill {mode}" for mode in ("after-read", "after-commit", "random") if not done[mode]]
    return row


def hits(done: Counter[str]) -> dict[str, int]:
    return {mode: n for mode, n in done.items() if "missed" not in mode}


async def poll_until(probe: Callable[[], Awaitable[object]], timeout: float) -> None:
    """Poll an async probe (returning something truthy when done) until it holds or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.01)
