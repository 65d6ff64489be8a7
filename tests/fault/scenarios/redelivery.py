"""Scenario 3: duplicate delivery. A partition's checkpoint is rolled back (some entries, or to the origin) while
real projectors run and the writer writes; the feed is never trimmed, so every rolled-back entry is read again.

Each rollback is one Lua script (read the checkpoint, pick an older feed id, SET it), so it never races a commit.
Proof that the entries really were delivered twice: a commit adds the entries of its batch to the partition's
folded count, so in the end folded - entries-added equals the rolled-back entries exactly; and the snapshots
applied each of them once (Account.applied == stream length, verify clean).
"""

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from store.positions import is_after, text
from tests.fault.scenarios.common import Stage, stage
from tests.support.crash_writer import wait_settled
from tests.support.faults import Row, audit, wait_until_caught_up
from tests.support.faults_processes import TrackedProjectors

PARTITIONS = 4
ROLL_BACK = """
local current = redis.call('GET', KEYS[1]) or '0-0'
local back = tonumber(ARGV[1])
local older = '0-0'
if back > 0 then
  local entries = redis.call('XREVRANGE', KEYS[2], current, '-', 'COUNT', back + 1)
  if #entries > back then older = entries[back + 1][1] end
end
local again = redis.call('XRANGE', KEYS[2], '(' .. older, current)
redis.call('SET', KEYS[1], older)
return {current, older, #again}
"""


async def roll_back(st: Stage, partition: int, back: int) -> tuple[str, int]:
    """Move the checkpoint `back` entries back (0: to the origin); returns (where it was, entries to re-read)."""
    keys = [st.keys.checkpoint(partition), st.keys.feed(partition)]
    reply: Any = await st.redis.eval(ROLL_BACK, 2, *keys, back)
    current, _, again = reply
    return text(current), int(again)


async def folded_past(st: Stage, partition: int, position: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while is_after(position, await st.projection.checkpoint(partition)):
        if loop.time() > deadline:
            raise TimeoutError(f"partition {partition} did not re-read up to {position}")
        await asyncio.sleep(0.01)


async def redelivered(st: Stage) -> int:
    """Entries folded more than once, by the partitions' own counts."""
    total = 0
    for partition in range(PARTITIONS):
        info: Any = await st.redis.xinfo_stream(st.keys.feed(partition))
        folded: Any = await st.redis.get(st.keys.folded(partition))
        total += int(folded or 0) - int(info.get("entries-added") or info.get(b"entries-added") or 0)
    return total


async def run(tmp_path: Path, rollbacks: int, accounts: int, seed: int) -> Row:
    started = time.monotonic()
    rng = random.Random(seed)
    async with stage(tmp_path, PARTITIONS) as st:
        writer = st.writer(rng, accounts)
        procs = TrackedProjectors(st.url, PARTITIONS, st.logs, lease_ttl_ms="1000", block_ms="20", batch_size="64",
                                  clock_interval_ms="200", log_level="WARNING", trim_every_batches="0")
        writing = asyncio.create_task(writer.run(events=10**9, seconds=120))
        rolled, to_origin = 0, 0
        try:
            await procs.open()
            for name in (procs.start(), procs.start()):
                await procs.wait_joined(st.redis, name)
            for n in range(rollbacks):
                assert not writing.done(), writing
                await asyncio.sleep(rng.uniform(0.05, 0.2))  # the writer goes on meanwhile
                partition = rng.randrange(PARTITIONS)
                back = 0 if n % 5 == 4 else rng.randint(1, 200)
                was, again = await roll_back(st, partition, back)
                rolled += again
                to_origin += back == 0
                await folded_past(st, partition, was, timeout=120)
            await writer.stop(writing)
            await wait_settled(st.store, st.projection, writer, timeout=30)
            assert procs.exited_on_their_own() == {}
            assert not await wait_until_caught_up(st.store, st.projection, timeout=60), "still behind"
            twice = await redelivered(st)  # every feed entry folded: folded - added counts only entries read again
            result = await audit(st.store, st.projection, writer.acked_refs())
        finally:
            writer.stopping = True
            await asyncio.wait([writing], timeout=15)
            procs.close()
    row = Row("3 checkpoint rolled back (redelivery)", faults=rollbacks, note=(
        f"{rollbacks} rollbacks ({to_origin} to the origin), {rolled} entries rolled back; re-read by the "
        f"projectors (folded - added) {twice}, each a no-op"))
    if twice != rolled:
        row.problems.append(f"rolled back {rolled} entries but {twice} were folded twice")
    result.fill(row)
    row.seconds = time.monotonic() - started
    return row
