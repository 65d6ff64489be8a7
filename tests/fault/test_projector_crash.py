"""Invariants 2-4 through crashes: real `tally projector` processes SIGKILLed at random while a writer appends.

After the chaos one projector catches up alone; then every acknowledged append is in its stream exactly once,
every stream entry was applied exactly once (Account.applied == stream length, the partition's folded count ==
entries added, verify finds no drift and nothing behind) and no checkpoint or snapshot position ever went back.
"""

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from api.accounts import Accounts
from domain.clock import due_events
from domain.commands import AnyCommand, CreateWallet, DebitWallet, TopUpWallet
from domain.errors import InvalidOperation
from domain.events import CreditsGranted
from domain.identity import AccountRef
from domain.settings import AlertSettings, AlertThreshold
from store.connect import connect
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from store.positions import ORIGIN, parse
from store.projection import Projection
from store.verify import verify_all
from tests.support.catchup import every_account, lag
from tests.support.projectors import ProjectorProcesses

PARTITIONS = 8
LEASE_TTL_MS = 1000
MEMBERSHIP_TTL_MS = 2 * LEASE_TTL_MS  # cli.wiring: a silent projector stops counting for its share after this
MIN_EVENTS = 500  # acknowledged appends without which the test proves little
GRACE = timedelta(seconds=3600)  # the projector's default period grace; these accounts have no usage anyway
ALERTS = AlertSettings(alert_enabled=True, critical=AlertThreshold(threshold=Decimal(20)),
                       warning=AlertThreshold(threshold=Decimal(150)))


@dataclass
class Writer:
    """Appends top-ups (single and bulk), debits and retries; remembers every append Redis acknowledged."""

    store: EventStore
    rng: random.Random
    refs: list[AccountRef]
    acked: dict[str, tuple[AccountRef, str]] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    last_expiry: datetime = field(default_factory=lambda: datetime.now(UTC))
    serial: int = 0

    def next_id(self, kind: str) -> str:
        self.serial += 1
        return f"{kind}_{self.serial:06d}"

    async def execute(self, ref: AccountRef, command: AnyCommand, ids: list[str], dedup: Dedup | None) -> None:
        outcome = await Accounts(self.store).execute(ref, command, dedup)
        assert outcome.appended is not None and outcome.appended.status == "appended", outcome.appended
        for event_id, position in zip(ids, outcome.appended.positions, strict=True):
            self.acked[event_id] = (ref, position)
        if dedup is not None and self.rng.random() < 0.3:  # a producer retry: must append nothing
            again = await Accounts(self.store).execute(ref, command, dedup)
            assert again.appended is not None and again.appended.status == "duplicate", again.appended
            self.stats["retried"] += 1

    async def create_wallets(self) -> None:
        for ref in self.refs:
            event_id = self.next_id("evt")
            await self.execute(ref, CreateWallet(
                event_id=event_id, wallet_id=f"w_{ref.customer_id}", tenant_id=ref.tenant_id,
                environment_id=ref.environment_id, customer_id=ref.customer_id, currency="USD", alert_settings=ALERTS,
                initial_credits=Decimal(500), initial_transaction_id=self.next_id("wtx"),
            ), [event_id], None)

    async def top_up(self, ref: AccountRef) -> None:
        event_id, key = self.next_id("evt"), self.next_id("key")
        expires = None
        if self.rng.random() < 0.2:  # short-lived lots: the projectors' clock expires them, across crashes too
            expires = datetime.now(UTC) + timedelta(seconds=self.rng.uniform(0.5, 3))
            self.last_expiry = max(self.last_expiry, expires)
        command = TopUpWallet(event_id=event_id, wallet_id=f"w_{ref.customer_id}", transaction_id=self.next_id("wtx"),
                              reason="PURCHASED_CREDIT_DIRECT", credits=Decimal(self.rng.randint(1, 400)),
                              priority=self.rng.choice([None, 1, 2]), expires_at=expires, idempotency_key=key)
        await self.execute(ref, command, [event_id], Dedup("topup", key, event_id, f"w_{ref.customer_id}"))

    async def debit(self, ref: AccountRef) -> None:
        event_id = self.next_id("evt")
        command = DebitWallet(event_id=event_id, wallet_id=f"w_{ref.customer_id}", transaction_id=self.next_id("wtx"),
                              credits=Decimal(self.rng.randint(1, 300)) / 4)
        try:
            await self.execute(ref, command, [event_id], None)
        except InvalidOperation:
            self.stats["refused"] += 1

    async def bulk(self) -> None:
        """A batch of single-event appends in one pipeline, each deduplicated on its event id; then resent."""
        items = []
        for ref in self.rng.sample(self.refs, min(5, len(self.refs))):
            event = CreditsGranted(id=self.next_id("evt"), at=datetime.now(UTC), wallet_id=f"w_{ref.customer_id}",
                                   transaction_id=self.next_id("wtx"), credits=Decimal(self.rng.randint(1, 50)),
                                   reason="FREE_CREDIT_GRANT")
            items.append((ref, event, Dedup("bulk", event.id)))
        for (ref, event, _), result in zip(items, await self.store.append_each(items), strict=True):
            assert result.status == "appended", result
            self.acked[event.id] = (ref, result.positions[0])
        if self.rng.random() < 0.3:
            assert {r.status for r in await self.store.append_each(items)} == {"duplicate"}
            self.stats["retried"] += 1

    async def run(self, events: int, seconds: float, lanes: int = 4, at_least: int = 0, cap: float = 0.0) -> None:
        """Create the wallets, then write from `lanes` concurrent producers until `events` are acknowledged
        or `seconds` have passed, whichever comes first; then, if fewer than `at_least` are acknowledged (a slow
        machine), write on until they are, for at most `cap` seconds more (a stall, not the plan)."""
        await self.create_wallets()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        await asyncio.gather(*(self.lane(self.refs[i::lanes], events, deadline) for i in range(lanes)))
        if len(self.acked) < at_least:
            deadline = loop.time() + cap
            await asyncio.gather(*(self.lane(self.refs[i::lanes], at_least, deadline) for i in range(lanes)))

    async def lane(self, refs: list[AccountRef], events: int, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while len(self.acked) < events and loop.time() < deadline:
            ref, roll = self.rng.choice(refs), self.rng.random()
            if roll < 0.1:
                await self.bulk()
            elif roll < 0.55:
                await self.top_up(ref)
            else:
                await self.debit(ref)
            await asyncio.sleep(self.rng.uniform(0, 0.004))


@dataclass
class Monitor:
    """Samples every checkpoint and snapshot position; records any that moves backwards (invariant 4)."""

    redis: Redis
    keys: Keys
    refs: list[AccountRef]
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    backwards: list[str] = field(default_factory=list)
    samples: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        names = [self.keys.checkpoint(p) for p in range(self.keys.partitions)]
        while not stop.is_set():
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.get(name)
                for ref in self.refs:
                    pipe.hget(self.keys.snapshot(ref), "p")
                replies: list[Any] = await pipe.execute()
            for name, value in zip([*names, *map(self.keys.snapshot, self.refs)], replies, strict=True):
                position = parse(value.decode() if value else ORIGIN)
                if position < self.seen.get(name, (0, 0)):
                    self.backwards.append(f"{name}: {self.seen[name]} -> {position}")
                self.seen[name] = max(position, self.seen.get(name, (0, 0)))
            self.samples += 1
            await asyncio.sleep(0.02)


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


async def wait_settled(store: EventStore, projection: Projection, writer: Writer, timeout: float) -> None:
    """Poll until the clock has nothing left to append, then until every stream is folded (no fixed sleep): in
    that order, since the clock may append an expiry at any moment until nothing is due."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        now = datetime.now(UTC)
        behind = [f"lots expiring up to {writer.last_expiry}"] if now <= writer.last_expiry else [
            f"{ref}: clock events due" for ref in writer.refs
            if due_events((await store.read_account(ref)).account, now, GRACE)]
        if not behind:
            behind = await lag(store, projection)
            if not behind:
                return
        if loop.time() > deadline:
            raise TimeoutError(f"the last projector did not settle in {timeout}s: {behind[:5]}")
        await asyncio.sleep(0.02)


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
