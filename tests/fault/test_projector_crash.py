"""Invariants 2-4 through crashes: real `tally projector` processes SIGKILLed at random while a writer appends.

After the chaos one projector catches up alone; then every acknowledged append is in its stream exactly once,
every stream entry was applied exactly once (Account.applied == stream length, the partition's folded count ==
entries added, verify finds no drift and nothing behind) and no checkpoint or snapshot position ever went back.
"""

import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.identity import AccountRef
from store.connect import connect
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from store.verify import verify_all
from tests.support.catchup import every_account
from tests.support.crash_writer import Monitor, Writer, wait_settled
from tests.support.projectors import ProjectorProcesses

PARTITIONS = 8
LEASE_TTL_MS = 1000
MEMBERSHIP_TTL_MS = 2 * LEASE_TTL_MS  # cli.wiring: a silent projector stops counting for its share after this
MIN_EVENTS = 500  # acknowledged appends without which the test proves little


@dataclass
class Chaos:
    """Kills projector processes at random moments, keeping one or two alive (two share the partitions), and
    a few times freezes one long enough for the other to take its partitions over, then lets it resume: whatever
    batch it was folding must be fenced off (its lease is gone), never committed over the new holder's work."""

    procs: ProjectorProcesses
    redis: Redis
    rng: random.Random
    kills: int = 0
    kills_holding_leases: int = 0
    freezes: int = 0

    async def run(self, kills: int, freezes: int, writing: asyncio.Task[None]) -> None:
        """`kills` kills, and more (up to three times as many) while the writer is still writing."""
        freeze_at = set(self.rng.sample(range(1, kills), freezes))
        while self.kills < kills or (not writing.done() and self.kills < 3 * kills):
            assert self.procs.exited_on_their_own() == {}
            while len(self.procs.running) < self.rng.choice((1, 2, 2)):
                self.procs.start(cold=self.procs.started == 0)  # the console entry first, then forks
            victim = self.rng.choice(self.procs.running)
            if self.rng.random() < 0.8:  # mostly once it is folding; sometimes while it is still starting up
                await self.procs.wait_joined(self.redis, victim)
            await asyncio.sleep(self.rng.uniform(0, 0.4))
            frozen = self.kills in freeze_at
            if frozen:
                freeze_at.discard(self.kills)
                await self.freeze(victim)
            elif self.kills_holding_leases < (self.kills + 3) // 3:
                await self.until_holding(victim)  # at least every third kill hits a lease holder (polled, bounded)
            self.kills_holding_leases += await self.procs.holds_a_lease(self.redis, victim)
            self.procs.kill(victim)
            self.kills += 1

    async def until_holding(self, victim: str, timeout: float = 120.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await self.procs.holds_a_lease(self.redis, victim):
            assert asyncio.get_running_loop().time() < deadline, f"{victim} never took a lease"
            await asyncio.sleep(0.01)

    async def freeze(self, victim: str) -> None:
        """SIGSTOP the victim (a long GC or VM pause) past its lease and its membership, while a second projector
        runs and takes its partitions over; then SIGCONT it. The pause is the fault, not a wait for the projector."""
        if len(self.procs.running) < 2:
            self.procs.start()
        for name in self.procs.running:
            await self.procs.wait_joined(self.redis, name)
        self.procs.pause(victim, True)
        try:
            await asyncio.sleep((MEMBERSHIP_TTL_MS + LEASE_TTL_MS * self.rng.uniform(0.5, 1.5)) / 1000)
        finally:
            self.procs.pause(victim, False)
        await asyncio.sleep(self.rng.uniform(0.1, 0.5))  # let it run into its stale commit, then kill it
        self.freezes += 1


async def assert_exactly_once(store: EventStore, projection: Projection, writer: Writer) -> int:
    """Every acknowledged append is in its stream once; every entry was applied once; returns the entry count."""
    refs = await every_account(store)
    assert sorted(refs) == sorted(writer.refs)
    logged: dict[str, tuple[AccountRef, str]] = {}
    per_partition: Counter[int] = Counter()
    for ref in refs:
        log = await store.read_log(ref)
        ids = [event.id for _, event in log]
        assert len(ids) == len(set(ids)), f"{ref}: an event id is in the stream twice"
        logged.update((event.id, (ref, position)) for position, event in log)
        snapshot = (await store.read_account(ref, cached=True)).account
        assert snapshot.applied == len(log) and snapshot.position == log[-1][0], f"{ref}: applied {snapshot.applied}"
        per_partition[store.keys.partition_of(ref)] += len(log)
    missing = {event_id for event_id, where in writer.acked.items() if logged.get(event_id) != where}
    assert not missing, f"{len(missing)} acknowledged appends are not where Redis said: {sorted(missing)[:5]}"
    extra = set(logged) - set(writer.acked)
    assert all(event_id.startswith("clock:expire:") for event_id in extra), sorted(extra)[:5]
    for partition in range(store.keys.partitions):
        state = await projection.lag(partition)
        folded: Any = await store.redis.get(store.keys.folded(partition))
        assert (state.behind, int(folded or 0)) == (0, per_partition[partition]), f"partition {partition}: {state}"
    report = await verify_all(store, projection)
    assert report.drifts == [] and report.behind == [] and report.events == len(logged)
    return len(logged)


async def assert_alerts_once(redis: Redis, keys: Keys) -> None:
    """Alert transitions are written once each, however often their batch was folded."""
    transitions: list[bytes] = []
    for partition in range(keys.partitions):
        transitions.extend(fields[b"k"] for _, fields in await redis.xrange(keys.notices(partition)))
    duplicated = [key for key, n in Counter(transitions).items() if n > 1]
    assert not duplicated, f"alert transitions written twice: {duplicated[:5]}"


async def crash_projectors_while_writing(
    url: str, log_dir: Path, kills: int, freezes: int, events: int, seconds: float, seed: int
) -> None:
    """The writer writes `events` or for `seconds`, and on until at least MIN_EVENTS are acknowledged (a loaded
    machine writes slowly: the test takes longer, it does not prove less)."""
    rng = random.Random(seed)
    redis = connect(url)
    keys = Keys(PARTITIONS)
    store, projection = EventStore(redis, keys, 3600), Projection(redis, keys)
    writer = Writer(store, rng, [AccountRef("tenant_f", "env_f", f"cust_{i:02d}") for i in range(20)])
    procs = ProjectorProcesses(url, PARTITIONS, log_dir, lease_ttl_ms=str(LEASE_TTL_MS), block_ms="20", batch_size="64",
                               clock_interval_ms="200", log_level="WARNING")
    monitor, stop_monitor = Monitor(redis, keys, writer.refs), asyncio.Event()
    chaos = Chaos(procs, redis, rng)
    sampling = asyncio.create_task(monitor.run(stop_monitor))
    writing: asyncio.Task[None] | None = None
    try:
        await procs.open()
        writing = asyncio.create_task(writer.run(events, seconds, at_least=min(events, MIN_EVENTS), cap=300))
        await asyncio.gather(writing, chaos.run(kills, freezes, writing))
        assert procs.exited_on_their_own() == {}
        for name in procs.running:
            procs.kill(name)
        final = procs.start(cold=True)
        await procs.wait_joined(redis, final)
        await wait_settled(store, projection, writer, timeout=120)  # polled: the bound marks a stall
        stop_monitor.set()
        await sampling
        assert procs.stop(final) == 0, procs.log_tail(final)
        total = await assert_exactly_once(store, projection, writer)
        await assert_alerts_once(redis, keys)
        assert monitor.backwards == [] and monitor.samples > 10
        assert sum(seen > (0, 0) for seen in monitor.seen.values()) >= len(writer.refs), "the monitor saw nothing"
        assert chaos.kills >= kills and chaos.kills_holding_leases >= kills // 3, chaos
        assert len(writer.acked) >= min(events, MIN_EVENTS), "the writer hardly wrote: the test proves little"
        print(f"\nkills={chaos.kills} (holding leases: {chaos.kills_holding_leases}) freezes={chaos.freezes} "
              f"started={procs.started} "
              f"entries={total} acknowledged={len(writer.acked)} {dict(writer.stats)} samples={monitor.samples}")
    except BaseException as failure:
        failure.add_note(f"random seed {seed}; projector logs in {log_dir}")
        raise
    finally:
        stop_monitor.set()
        if writing is not None and not writing.done():
            writing.cancel()
        await asyncio.wait([t for t in (sampling, writing) if t is not None], timeout=10)
        procs.close()
        await redis.aclose()


async def test_projector_killed_at_random_applies_every_event_once(clean_redis: str, tmp_path: Path) -> None:
    await crash_projectors_while_writing(clean_redis, tmp_path, kills=20, freezes=3, events=3000, seconds=15,
                                         seed=random.randrange(1 << 30))


@pytest.mark.slow
async def test_projector_killed_many_times_under_a_long_write_load(clean_redis: str, tmp_path: Path) -> None:
    await crash_projectors_while_writing(clean_redis, tmp_path, kills=60, freezes=8, events=20000, seconds=60,
                                         seed=random.randrange(1 << 30))
