"""The projector: a catch-up subscription per partition, folded in batches, committed with its checkpoint."""

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta

import msgspec

from domain.timefmt import format_rfc3339
from projector.batch import Folded, PoisonEntry, fold_batch, group_by_account
from projector.clock import PartitionClock
from projector.membership import Membership
from projector.metrics import (
    ALERTS,
    BATCH_SECONDS,
    ERRORS,
    FOLDED,
    HALTED,
    LAG_EVENTS,
    LAG_SECONDS,
    LEASES,
    QUARANTINED,
)
from projector.retention import PartitionRetention
from store.deadletters import DeadLetters
from store.generation import live_generation
from store.projection import CHECKPOINT_MOVED, COMMITTED, LEASE_LOST, FeedEntry, Projection

log = logging.getLogger("tally.projector")
RETRY_AFTER_ERROR_S = 1.0


class ProjectorSettings(msgspec.Struct, frozen=True, kw_only=True):
    holder: str
    batch_size: int = 1000
    block_ms: int = 50
    lease_ttl_ms: int = 5000
    period_grace_seconds: int = 3600
    clock_interval_ms: int = 1000
    trim_every_batches: int = 50

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.period_grace_seconds)


class PartitionWorker:
    """Owns at most one partition's lease and folds its feed while it holds it."""

    def __init__(
        self, partition: int, projection: Projection, settings: ProjectorSettings, clock: PartitionClock
    ) -> None:
        self.partition = partition
        self.projection = projection
        self.settings = settings
        self.clock = clock
        self.clock_due = 0.0
        self.lease: str | None = None
        self.checkpoint: str | None = None
        self.renewed_at = 0.0
        self.halted: str | None = None
        self.batches = 0

    async def keep_lease(self, wanted: bool) -> None:
        if not wanted:
            await self.release()
            return
        due = time.monotonic() - self.renewed_at > self.settings.lease_ttl_ms / 3000
        if self.lease is None or due:
            held = self.lease
            self.lease = await self.projection.take_lease(
                self.partition, self.settings.holder, self.settings.lease_ttl_ms, self.lease
            )
            self.renewed_at = time.monotonic()
            if self.lease is None:
                self.checkpoint = None
                self._forget_quarantined()
            if self.lease != held:
                LEASES.labels("taken" if self.lease else "lost").inc()
                log.info("lease partition=%d held=%s now=%s", self.partition, held, self.lease)

    async def release(self) -> None:
        if self.lease is not None:
            await self.projection.release_lease(self.partition, self.lease)
            LEASES.labels("released").inc()
            log.info("lease released partition=%d lease=%s", self.partition, self.lease)
        self.lease = None
        self.checkpoint = None
        self._forget_quarantined()

    def _forget_quarantined(self) -> None:
        with contextlib.suppress(KeyError):  # the projector holding the partition reports it
            QUARANTINED.remove(str(self.partition))

    async def step(self) -> int:
        """Read one batch from the checkpoint, fold it and commit it; returns the events applied."""
        if self.lease is None or self.halted:
            return 0
        if self.checkpoint is None:
            self.checkpoint = await self.projection.checkpoint(self.partition)
        checkpoint, lease = self.checkpoint, self.lease  # a generation switch may reset self.checkpoint meanwhile
        entries = await self.projection.read_feed(
            self.partition, checkpoint, self.settings.batch_size, self.settings.block_ms
        )
        if not entries:
            return 0
        started = time.perf_counter()
        entries, folded, poison = await self._fold_until_poison(entries)
        if entries and not await self._commit(checkpoint, lease, entries, folded, started):
            return 0
        if poison is not None:
            await self._halt(poison)
        return folded.applied

    async def _fold_until_poison(self, entries: list[FeedEntry]) -> tuple[list[FeedEntry], Folded, PoisonEntry | None]:
        """Fold the batch up to the first entry naming no readable account (returned as poison: it halts the
        partition). An account whose own entry cannot be folded is quarantined by fold_batch; the rest go on."""
        poison: PoisonEntry | None = None
        broken = next((i for i, e in enumerate(entries) if e.broken), None)
        if broken is not None:
            poison = PoisonEntry(entries[broken].position, entries[broken].broken or "")
            entries = entries[:broken]
        if not entries:
            return [], Folded(), poison
        groups = group_by_account(entries)
        snapshots = await self.projection.load_snapshots(list(groups))
        await self.projection.load_rate_cards(self.partition, entries)
        cards = self.projection.rate_cards
        return entries, fold_batch(groups, snapshots, self.settings.grace, cards, self.projection.ledger_keep), poison

    async def _halt(self, poison: PoisonEntry) -> None:
        self.halted = str(poison)
        HALTED.inc()
        await DeadLetters(self.projection.redis, self.projection.keys).halt(self.partition, poison.position,
                                                                            poison.reason)
        log.error("partition halted partition=%d position=%s reason=%r", self.partition, poison.position,
                  poison.reason)

    async def _commit(
        self, checkpoint: str, lease: str, entries: list[FeedEntry], folded: Folded, started: float
    ) -> bool:
        folded_at = format_rfc3339(datetime.now(UTC))
        outcome = await self.projection.commit(
            self.partition, lease, checkpoint, entries[-1].position, folded.writes, folded_at,
            len(entries), folded.notices, folded.quarantines,
        )
        if outcome == COMMITTED:
            if self.checkpoint == checkpoint:
                self.checkpoint = entries[-1].position
            if folded.quarantines:
                await self._quarantined(folded)
            FOLDED.labels(str(self.partition)).inc(folded.applied)
            ALERTS.labels("notice").inc(len(folded.notices))
            BATCH_SECONDS.observe(time.perf_counter() - started)
            now_ms = int(self.clock.now().timestamp() * 1000)
            if any(w.due_ms is not None and w.due_ms <= now_ms for w in folded.writes):
                self.clock_due = 0.0  # something is due already (an auto top-up): run the clock right away
            self.batches += 1
            if self.settings.trim_every_batches and self.batches % self.settings.trim_every_batches == 0:
                await self.projection.trim_feed(self.partition, entries[-1].position)
            log.info("batch partition=%d entries=%d applied=%d accounts=%d alerts=%d checkpoint=%s ms=%.2f",
                     self.partition, len(entries), folded.applied, len(folded.writes), len(folded.notices),
                     entries[-1].position, (time.perf_counter() - started) * 1000)
            return True
        if outcome == LEASE_LOST:
            LEASES.labels("lost").inc()
            log.warning("lease lost partition=%d lease=%s", self.partition, lease)
            self.lease = None
        elif outcome == CHECKPOINT_MOVED:
            log.warning("checkpoint moved partition=%d expected=%s", self.partition, checkpoint)
        self.checkpoint = None
        return False

    async def _quarantined(self, folded: Folded) -> None:
        for quarantine in folded.quarantines:
            letter = quarantine.letter
            log.error("account quarantined partition=%d tenant=%r environment=%r customer=%r kind=%s "
                      "log_position=%s feed_position=%s reason=%r", self.partition, letter.ref.tenant_id,
                      letter.ref.environment_id, letter.ref.customer_id, letter.kind, letter.log_position,
                      letter.feed_position, letter.reason)
        await self.count_quarantined()

    async def count_quarantined(self) -> None:
        QUARANTINED.labels(str(self.partition)).set(await self.projection.quarantined_count(self.partition))

    async def check_halt(self) -> None:
        """A halted partition resumes once an operator retried or dropped its entry (`tally dlq`)."""
        dead_letters = DeadLetters(self.projection.redis, self.projection.keys)
        if self.halted and await dead_letters.halted(self.partition) is None:
            log.info("partition resumed partition=%d", self.partition)
            HALTED.dec()
            self.halted = None
            self.checkpoint = None

    async def tick(self) -> None:
        """Run the clock for this partition when its interval has passed."""
        if self.lease is None or self.halted or time.monotonic() < self.clock_due:
            return
        self.clock_due = time.monotonic() + self.settings.clock_interval_ms / 1000
        await self.clock.run(self.partition)
        await self.count_quarantined()
        lag = await self.projection.lag(self.partition)
        LAG_EVENTS.labels(str(self.partition)).set(lag.behind)
        age = 0.0 if lag.oldest_unfolded_ms is None else max(0.0, time.time() - lag.oldest_unfolded_ms / 1000)
        LAG_SECONDS.labels(str(self.partition)).set(age)


class Projector:
    """Runs a worker per partition; takes no more partitions than its fair share of the live projectors, and runs
    retention for the partitions it holds."""

    def __init__(
        self, projection: Projection, membership: Membership, settings: ProjectorSettings, clock: PartitionClock,
        retention: PartitionRetention | None = None,
    ) -> None:
        self.retention = retention
        self.projection = projection
        self.membership = membership
        self.settings = settings
        self.clock = clock
        partitions = projection.keys.partitions
        self.workers = [PartitionWorker(p, projection, settings, clock) for p in range(partitions)]

    def use_generation(self, generation: int) -> None:
        """Fold into another projection generation (after `tally replay` switched it) from its own checkpoints."""
        log.info("projection generation %d -> %d", self.projection.keys.generation, generation)
        self.projection.use_generation(generation)
        self.clock.use_generation(generation)
        for worker in self.workers:
            worker.checkpoint = None

    async def run(self, stop: asyncio.Event) -> None:
        self.use_generation(await live_generation(self.projection.redis, self.projection.keys))
        tasks = [asyncio.create_task(self._run_worker(worker, stop)) for worker in self.workers]
        try:
            while not stop.is_set():
                try:
                    await self.membership.heartbeat()
                    generation = await live_generation(self.projection.redis, self.projection.keys)
                    if generation != self.projection.keys.generation:
                        self.use_generation(generation)
                except Exception:
                    ERRORS.inc()
                    log.exception("heartbeat error; retrying")
                await _wait(stop, self.settings.lease_ttl_ms / 3000)
        finally:
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.membership.leave()

    def held(self) -> int:
        return sum(1 for worker in self.workers if worker.lease is not None)

    async def _run_worker(self, worker: PartitionWorker, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self._turn(worker, stop)
                except Exception:  # a Redis outage or a bug must not end the partition's loop for good
                    ERRORS.inc()
                    log.exception("worker error partition=%d; retrying", worker.partition)
                    worker.checkpoint = None
                    await _wait(stop, RETRY_AFTER_ERROR_S)
        finally:
            with contextlib.suppress(Exception):
                await worker.release()

    async def _turn(self, worker: PartitionWorker, stop: asyncio.Event) -> None:
        share = self.membership.share(len(self.workers))
        holding = worker.lease is not None
        await worker.keep_lease((holding and self.held() <= share) or (not holding and self.held() < share))
        if worker.lease is None or worker.halted:
            await worker.check_halt()
            await _wait(stop, self.settings.lease_ttl_ms / 5000)
            return
        await worker.step()
        await worker.tick()
        if self.retention is not None:
            await self.retention.maybe_run(worker.partition)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
