"""Scenario 5: the feed trimmed hard while a projector lags.

Two real projectors trim after every batch (TALLY_TRIM_EVERY_BATCHES=1) with long leases. Once they share the
partitions evenly and every partition's feed has been trimmed, one of them is SIGSTOPped, so its partitions fall
behind while the writer goes on; the lag lasts until each of its partitions has entries it has not folded (polled,
not timed). Meanwhile the test trims every partition at its checkpoint (Projection.trim_feed) over and over, with
small stream nodes so trimming bites. Before the laggard resumes, every
stream entry its snapshots have not folded must still be in its partition's feed; after it resumes and catches up,
nothing is missing from the snapshots and verify is clean.
"""

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from domain.codec import encode_ref
from store.positions import ORIGIN, is_after, text
from tests.fault.scenarios.common import Stage, stage
from tests.support.crash_writer import wait_settled
from tests.support.faults import Row, audit
from tests.support.faults_processes import TrackedProjectors

PARTITIONS = 4
LAG_DEADLINE_S = 8  # well inside the laggard's membership (12 s): its partitions stay its own all along


async def trim_all(st: Stage) -> int:
    """Trim every partition at its own checkpoint; returns how many trims were made."""
    for partition in range(PARTITIONS):
        await st.projection.trim_feed(partition, await st.projection.checkpoint(partition))
    return PARTITIONS


async def needed_but_trimmed(st: Stage, partitions: list[int]) -> tuple[int, int]:
    """(unfolded stream entries no longer in their feed, unfolded stream entries) over these partitions, each read in
    one MULTI (checkpoint, feed, snapshots, streams), so a commit or a trim running meanwhile cannot fool it."""
    missing = unfolded = 0
    for partition in partitions:
        refs = await st.store.accounts(partition)
        async with st.redis.pipeline(transaction=True) as pipe:
            pipe.get(st.keys.checkpoint(partition))
            pipe.xrange(st.keys.feed(partition))
            for ref in refs:
                pipe.hget(st.keys.snapshot(ref), "p")
                pipe.xrange(st.keys.log(ref))
            replies: list[Any] = await pipe.execute()
        checkpoint = text(replies[0] or ORIGIN)
        in_feed = {(fields[b"c"], text(fields[b"l"])) for entry_id, fields in replies[1]
                   if is_after(text(entry_id), checkpoint)}
        for n, ref in enumerate(refs):
            position, log = text(replies[2 + 2 * n] or ORIGIN), replies[3 + 2 * n]
            needed = [(encode_ref(ref), text(entry_id)) for entry_id, _ in log if is_after(text(entry_id), position)]
            unfolded += len(needed)
            missing += len([entry for entry in needed if entry not in in_feed])
    return missing, unfolded


async def below_checkpoints(st: Stage, partitions: list[int]) -> int:
    """Feed entries still at or below their partition's checkpoint (what a trim could have dropped)."""
    total = 0
    for partition in partitions:
        left: Any = await st.redis.xrange(st.keys.feed(partition), max=await st.projection.checkpoint(partition))
        total += len(left)
    return total


async def trimmed_entries(st: Stage, partitions: list[int]) -> int:
    total = 0
    for partition in partitions:
        info: Any = await st.redis.xinfo_stream(st.keys.feed(partition))
        added = info.get("entries-added") or info.get(b"entries-added") or 0
        total += int(added) - int(info.get("length") or info.get(b"length") or 0)
    return total


async def run(tmp_path: Path, lag_s: float, accounts: int, seed: int) -> Row:
    started = time.monotonic()
    rng = random.Random(seed)
    async with stage(tmp_path, PARTITIONS) as st:
        await st.redis.config_set("stream-node-max-entries", 4)  # approximate MINID trims whole nodes: make them small
        writer = st.writer(rng, accounts)
        procs = TrackedProjectors(st.url, PARTITIONS, st.logs, lease_ttl_ms="6000", block_ms="20", batch_size="32",
                                  clock_interval_ms="200", log_level="WARNING", trim_every_batches="1")
        writing = asyncio.create_task(writer.run(events=10**9, seconds=120))
        laggard, trims, lagging = "", 0, []
        try:
            await procs.open()
            names = [procs.start(), procs.start()]
            for name in names:
                await procs.wait_joined(st.redis, name)
            await poll(lambda: split_evenly(st, procs, names), "the projectors did not share the partitions evenly")
            await poll(lambda: each_trimmed(st, list(range(PARTITIONS))), "the projectors' trims did not bite")
            laggard = rng.choice(names)
            lagging = await procs.leases_of(st.redis, laggard)
            procs.pause(laggard, True)
            trims = await lag_and_trim(st, lag_s, lagging)
            other = await procs.leases_of(st.redis, next(n for n in names if n != laggard))
            lagging = [p for p in lagging if p not in other]  # none: its membership (2 lease TTLs) outlives the lag
            missing, unfolded = await needed_but_trimmed(st, lagging)
            trimmed_lagging, left_below = await trimmed_entries(st, lagging), await below_checkpoints(st, lagging)
            procs.pause(laggard, False)
            laggard = ""
            await writer.stop(writing)
            await wait_settled(st.store, st.projection, writer, timeout=30)
            assert procs.exited_on_their_own() == {}
            trimmed = await trimmed_entries(st, list(range(PARTITIONS)))
            result = await audit(st.store, st.projection, writer.acked_refs())
        finally:
            if laggard:
                with contextlib.suppress(Exception):
                    procs.pause(laggard, False)
            writer.stopping = True
            await asyncio.wait([writing], timeout=15)
            procs.close()
    row = Row("5 feed trimmed while a projector lags", faults=trims, note=(
        f"{trims} trims at each checkpoint + trim after every batch; partitions {lagging} lagged {unfolded} entries "
        f"behind for {lag_s:.1f} s or more with {trimmed_lagging} of their feed entries trimmed (left below their "
        f"checkpoints: {left_below}); needed entries trimmed: {missing}; feed entries trimmed in all {trimmed}"))
    result.fill(row)
    row.lost += missing
    if unfolded == 0 or trimmed_lagging == 0:
        row.problems.append("the laggard was not behind, or its feed was not trimmed: the scenario proved nothing")
    row.seconds = time.monotonic() - started
    return row


async def lag_and_trim(st: Stage, lag_s: float, lagging: list[int]) -> int:
    """While the laggard is stopped, trim every partition at its checkpoint over and over, for `lag_s` at least and
    until each lagging partition has entries appended after its checkpoint (the writer reached it); returns trims.
    The laggard keeps its partitions meanwhile: nobody takes them before its membership expires (2 lease TTLs)."""
    loop = asyncio.get_running_loop()
    at_least, deadline = loop.time() + lag_s, loop.time() + lag_s + LAG_DEADLINE_S
    trims = 0
    while loop.time() < at_least or not await each_behind(st, lagging):
        assert loop.time() < deadline, f"partitions {lagging} got no new entry in {lag_s + LAG_DEADLINE_S} s"
        trims += await trim_all(st)
        await asyncio.sleep(0.02)
    return trims


async def poll(condition: Callable[[], Awaitable[bool]], failure: str, timeout: float = 120) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, failure
        await asyncio.sleep(0.02)


async def split_evenly(st: Stage, procs: TrackedProjectors, names: list[str]) -> bool:
    """Each projector holds its fair share (so no lease is in the middle of a handover when one is stopped)."""
    held = [await procs.leases_of(st.redis, name) for name in names]
    return sorted(len(h) for h in held) == [PARTITIONS // len(names)] * len(names)


async def each_trimmed(st: Stage, partitions: list[int]) -> bool:
    return all([await trimmed_entries(st, [partition]) > 0 for partition in partitions])


async def each_behind(st: Stage, partitions: list[int]) -> bool:
    """Every partition's feed ends after its checkpoint: it holds entries nobody has folded."""
    for partition in partitions:
        last: Any = await st.redis.xrevrange(st.keys.feed(partition), count=1)
        if not last or not is_after(text(last[0][0]), await st.projection.checkpoint(partition)):
            return False
    return True
