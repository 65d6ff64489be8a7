"""Scenario 7b: the generation switch lands while a projector's worker is in the middle of a batch (deterministic).

`tally replay` ends by moving the generation pointer; each projector notices it on its next heartbeat and calls
Projector.use_generation, which resets every worker's checkpoint, also that of a worker that has read a batch and
not committed it yet. Here the worker's first batch read is held at a gate while the pointer moves and the projector
notices; then the batch goes on, more events are written, and the partition must keep folding into the new
generation.
"""

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from projector.clock import PartitionClock
from projector.membership import Membership
from projector.worker import Projector
from store.eventstore import EventStore
from store.generation import switch_generation
from store.keys import Keys
from store.projection import FeedEntry, Projection
from tests.fault.scenarios.common import DEDUP_TTL, stage
from tests.support.components import projector_settings
from tests.support.crash_writer import wait_settled
from tests.support.faults import Row, audit, wait_until_caught_up

STALL_S = 60.0  # polled: a live worker folds these few events in milliseconds; the bound only marks a stall


class HeldReads(Projection):
    """The first feed read that returns entries waits at a gate: its worker is mid-batch until the gate opens."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self.arrived = asyncio.Event()
        self.gate = asyncio.Event()

    async def read_feed(self, *args: Any, **kwargs: Any) -> list[FeedEntry]:
        entries = await super().read_feed(*args, **kwargs)
        if entries and not self.arrived.is_set():
            self.arrived.set()
            await self.gate.wait()
        return entries


async def run(tmp_path: Path, seed: int) -> Row:
    started = time.monotonic()
    rng = random.Random(seed)
    async with stage(tmp_path, partitions=1) as st:
        writer = st.writer(rng, 4)
        projection = HeldReads(st.redis, st.keys)
        settings = projector_settings("solo", lease_ttl_ms=600, block_ms=20)
        clock = PartitionClock(EventStore(st.redis, st.keys, DEDUP_TTL), projection, settings.grace)
        projector = Projector(projection, Membership(st.redis, st.keys, "solo", 1200), settings, clock)
        stop = asyncio.Event()
        running = asyncio.create_task(projector.run(stop))
        try:
            await writer.create_wallets()
            await asyncio.wait_for(projection.arrived.wait(), STALL_S)  # the worker has read its first batch
            await switch_generation(st.redis, st.keys, 2)  # what `tally replay` does last
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STALL_S
            while projection.keys.generation != 2:  # the projector notices on its next heartbeat
                assert loop.time() < deadline, "the projector never followed the generation pointer"
                await asyncio.sleep(0.01)
            projection.gate.set()
            writing = asyncio.create_task(writer.run_lanes(seconds=1.0))
            await asyncio.wait([writing], timeout=15)
            await writer.stop(writing)  # every lane has ended (a lane's failure is raised here)
            behind = await wait_until_caught_up(st.store, st.projection, timeout=STALL_S)
            alive = not running.done()
            if not behind:  # then the clock's last expiries too, or one appended mid-audit reads as lost
                await wait_settled(st.store, st.projection, writer, timeout=30)
            result = await audit(st.store, st.projection, writer.acked_refs())
        finally:
            writer.stopping = True
            stop.set()
            await asyncio.wait([running], timeout=15)
    row = Row("7b generation switch mid-batch (in process)", faults=1, note=(
        f"projector process still running: {alive}; projections behind {STALL_S:.0f} s after the switch: "
        f"{len(behind)}"))
    result.fill(row)
    if behind and alive:
        row.known_bugs.append("Projector.use_generation resets the checkpoint of a worker inside step(); its commit "
                              "passes None (redis DataError), the worker task ends silently, the partition stalls")
        row.bug_explains_columns = True
    row.seconds = time.monotonic() - started
    return row
