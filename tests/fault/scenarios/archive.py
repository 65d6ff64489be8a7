"""Scenario 8: the archiver killed at each step, a zombie archiver, and a segment file lost or corrupted.

A writer appends and an in-process projector folds; between bursts (caught up), a real `tally archive` process is
SIGKILLed at a point it is told (TALLY_TEST_ARCHIVE_STOP_AT: after the segment is written, after it is durable,
after the manifest commit, mid-trim), and the audit (archive + Redis read as one log) runs on the state it left;
the last run has no fault and finishes what the killed ones left. The zombie pauses (SIGSTOP) after its segment is
durable, its lease expires, another archiver does the work, and the zombie, resumed, must be refused at the
commit. A committed, untrimmed segment whose file is deleted or corrupted is named and nothing is trimmed.
"""

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cli.settings import Settings
from cli.wiring import run_projector
from store.archive.manifest import Manifest
from tests.fault.scenarios.common import Stage, StoppableWriter, stage
from tests.support.archive import stream_lengths, tally
from tests.support.crash_writer import wait_settled
from tests.support.faults import Audit, Row, audit, wait_until_caught_up

PARTITIONS = 4
STOPS = ("written", "durable", "committed", "trimming")


def env(archive_dir: Path, **extra: str) -> dict[str, str]:
    """A short archive lease (6 x 150 ms), so that a killed archiver's lease expires soon."""
    return {"TALLY_ARCHIVE_URL": str(archive_dir), "TALLY_ARCHIVE_AFTER": "0s", "TALLY_LEASE_TTL_MS": "150", **extra}


async def leases_expired(st: Stage) -> None:
    """Poll until no archive lease is held (a killed archiver's expires with its TTL)."""
    async def gone() -> bool:
        return all([await st.redis.get(st.keys.archive_lease(p)) is None for p in range(PARTITIONS)])

    await poll(gone, "an archive lease never expired")


@contextlib.asynccontextmanager
async def folding(st: Stage) -> AsyncIterator[None]:
    settings = Settings(partitions=PARTITIONS, block_ms=20, lease_ttl_ms=1000, archive_interval_seconds=0)
    stop = asyncio.Event()
    running = asyncio.create_task(run_projector(st.redis, settings, stop, "folder"))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait([running], timeout=15)


async def burst(st: Stage, writer: StoppableWriter, seconds: float) -> None:
    writer.stopping = False
    writing = asyncio.create_task(writer.run_lanes(seconds=seconds))
    await asyncio.wait([writing], timeout=seconds + 15)
    await writer.stop(writing)
    await caught_up(st)


async def caught_up(st: Stage) -> None:
    behind = await wait_until_caught_up(st.store, st.projection, timeout=60)
    assert not behind, f"the projector did not catch up: {behind[:3]}"


async def settled_audit(st: Stage, writer: StoppableWriter, attempts: int = 5) -> Audit:
    """Audit once the clock has nothing left to append for the writer's accounts (its short-lived lots expired and
    their expiries appended) and the projector caught up (wait_settled: clock first, then positions; catching up
    first let an expiry appended just after it read as a snapshot short of its head). An audit that still finds
    anything (unapplied, repeated, drifted, short of a head) settles and audits again, a bounded number of times:
    an entry really skipped stays unapplied with the snapshot at the head, so it fails every attempt; so does a
    missing acknowledged append."""
    for _ in range(attempts - 1):
        await wait_settled(st.store, st.projection, writer, timeout=60)
        result = await audit(st.store, st.projection, writer.acked_refs())
        if not (result.lost or result.duplicated or result.drift or result.behind):
            return result
    await wait_settled(st.store, st.projection, writer, timeout=60)
    return await audit(st.store, st.projection, writer.acked_refs())


def worst(row: Row, result: Audit) -> None:
    row.lost, row.duplicated, row.drift = (max(row.lost, result.lost), max(row.duplicated, result.duplicated),
                                           max(row.drift, result.drift))
    if result.details:
        row.problems.extend(result.details[:2])


async def run_kills(tmp_path: Path, rounds: int, accounts: int, seed: int) -> Row:
    started = time.monotonic()
    archive_dir = tmp_path / "archive"
    row = Row(f"8a archiver SIGKILLed at {', '.join(STOPS)} (x{rounds})")
    async with stage(tmp_path, PARTITIONS) as st, folding(st):
        writer = st.writer(random.Random(seed), accounts)
        await writer.create_wallets()
        for n in range(rounds * len(STOPS)):
            await burst(st, writer, 0.3)
            point = STOPS[n % len(STOPS)]
            await leases_expired(st)
            killed = tally(st.url, "archive", env=env(archive_dir, TALLY_TEST_ARCHIVE_STOP_AT=point))
            assert killed.returncode == -signal.SIGKILL, f"{point}: {killed.returncode} {killed.stdout}"
            row.faults += 1
            await caught_up(st)  # the projector's clock may have appended meanwhile
            worst(row, await settled_audit(st, writer))
        await burst(st, writer, 0.3)
        await leases_expired(st)
        final = tally(st.url, "archive", env=env(archive_dir))
        assert final.returncode == 0, final.stdout + final.stderr
        await caught_up(st)
        result = await settled_audit(st, writer)
        worst(row, result)
        row.events = result.events
        left = await stream_lengths(st.store)
        segments = sum([len(await Manifest(st.redis, st.keys).segments(p)) for p in range(PARTITIONS)])
    row.note = f"segments committed {segments}; entries left in Redis {left} of {row.events}"
    row.seconds = time.monotonic() - started
    return row


async def partition_lengths(st: Stage, partition: int) -> list[Any]:
    """The first entry of each stream of the partition: a trim would move one (appends do not)."""
    return [await st.redis.xrange(st.keys.log(ref), count=1) for ref in await st.store.accounts(partition)]


def stopped(pid: int) -> bool:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "T"
    return False


async def poll(check: Any, what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


async def run_zombie(tmp_path: Path, accounts: int, seed: int) -> Row:
    started = time.monotonic()
    archive_dir = tmp_path / "archive"
    row = Row("8b zombie archiver (paused past its lease) fenced at commit", faults=1)
    async with stage(tmp_path, PARTITIONS) as st, folding(st):
        writer = st.writer(random.Random(seed), accounts)
        await writer.create_wallets()
        await burst(st, writer, 0.5)
        environ = {**os.environ, "TALLY_REDIS_URL": st.url, "TALLY_PARTITIONS": str(PARTITIONS),
                   **env(archive_dir, TALLY_TEST_ARCHIVE_STOP_AT="pause:durable")}
        zombie = subprocess.Popen([sys.executable, "-c", "from cli.main import run; run()", "archive"], env=environ,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            async def paused() -> bool:
                return stopped(zombie.pid) or zombie.poll() is not None

            await poll(paused, "the zombie never reached its pause")
            await leases_expired(st)
            other = tally(st.url, "archive", env=env(archive_dir))
            assert other.returncode == 0, other.stdout + other.stderr
            zombie.send_signal(signal.SIGCONT)
            output, _ = zombie.communicate(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                zombie.kill()
        await caught_up(st)
        fenced = "lease of partition" in output and zombie.returncode == 1
        if not fenced:
            row.problems.append(f"the zombie was not refused: rc={zombie.returncode} {output[-300:]}")
        result = await settled_audit(st, writer)
        worst(row, result)
        row.events = result.events
        committed = {s.url for p in range(PARTITIONS) for s in await Manifest(st.redis, st.keys).segments(p)}
        orphans = [f for f in archive_dir.glob("partition=*/*.parquet") if f.as_uri() not in committed]
    row.note = f"zombie refused: {fenced}; orphan segment files (never read): {len(orphans)}"
    row.seconds = time.monotonic() - started
    return row


async def run_broken(tmp_path: Path, damage: str, accounts: int, seed: int) -> Row:
    """`damage` is `deleted` or `corrupted`: done to a segment committed by a run killed before its trim."""
    started = time.monotonic()
    archive_dir = tmp_path / "archive"
    row = Row(f"8c committed segment file {damage} before its trim", faults=1)
    async with stage(tmp_path, PARTITIONS) as st, folding(st):
        writer = st.writer(random.Random(seed), accounts)
        await writer.create_wallets()
        await burst(st, writer, 0.5)
        killed = tally(st.url, "archive", env=env(archive_dir, TALLY_TEST_ARCHIVE_STOP_AT="committed"))
        assert killed.returncode == -signal.SIGKILL, killed.stdout
        manifest = Manifest(st.redis, st.keys)
        [(partition, segment)] = [(p, s) for p in range(PARTITIONS) for s in await manifest.segments(p)]
        path = next(archive_dir.glob(f"partition=*/segment-{segment.number:09d}-*.parquet"))
        if damage == "deleted":
            path.unlink()
        else:
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
        before = await partition_lengths(st, partition)
        await leases_expired(st)
        again = tally(st.url, "archive", env=env(archive_dir))  # the other partitions are archived as usual
        after = await partition_lengths(st, partition)
        named = again.returncode == 1 and f"segment {segment.number} of partition" in again.stdout \
            and ("missing" if damage == "deleted" else "corrupted") in again.stdout
        if not named or after != before:
            row.problems.append(f"not named or trimmed anyway: rc={again.returncode} {again.stdout[-300:]}")
        await caught_up(st)
        result = await settled_audit(st, writer)
        worst(row, result)
        row.events = result.events
    row.note = f"named: {named}; streams of its partition trimmed after the damage: {after != before}"
    row.seconds = time.monotonic() - started
    return row
