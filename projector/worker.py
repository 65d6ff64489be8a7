"""The projector: a catch-up subscription per partition, folded in batches, committed with its checkpoint."""

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

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
from projector.runtime import Backoff, repeat
from projector.settings import ProjectorSettings as ProjectorSettings
from projector.snapshots import SnapshotCache, per_partition
from store.deadletters import DeadLetters
from store.generation import live_generation
from store.projection import CHECKPOINT_MOVED, COMMITTED, LEASE_LOST, SNAPSHOT_MOVED, FeedEntry, Projection

log = logging.getLogger("tally.projector")
# A partition's loop (and the heartbeat) retries a failed turn after 1 s, doubling while it keeps failing, up to 5 s.
BACKOFF = Backoff(first_s=1.0, max_s=5.0)
# A worker without its partition looks again five times per TTL: a partition whose holder died is taken over within
# a fifth of a TTL of its lease expiring, without a waiting worker polling Redis in a tight loop.
IDLE_LOOKS_PER_TTL = 5


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
        self.held = projection.lease(partition, settings.holder, settings.lease_ttl_ms)
        self.checkpoint: str | None = None
        self.renewed_at = 0.0
        self.halted: str | None = None
        self.batches = 0
        self.snapshots = SnapshotCache(per_partition(projection.keys.partitions))

    def forget(self) -> None:
        """Read the checkpoint and the snapshots from Redis again (something may have moved them)."""
        self.checkpoint = None
        self.snapshots.forget()

    @property
    def lease(self) -> str | None:
        """The fencing token of the partition's lease while this worker holds it (store/lease.py)."""
        return self.held.value

    async def keep_lease(self, wanted: bool) -> None:
        if not wanted:
            await self.release()
            return
        due = time.monotonic() - self.renewed_at > self.settings.renew_every_s
        if self.lease is None or due:
            held = self.lease
            await self.held.keep()
            self.renewed_at = time.monotonic()
            if self.lease is None:
                self._forget_quarantined()
            if self.lease != held:
                self.forget()
                LEASES.labels("taken" if self.lease else "lost").inc()
                log.debug("lease partition=%d held=%s now=%s", self.partition, held, self.lease)

    async def release(self) -> None:
        if self.lease is not None:
            lease = self.lease
            await self.held.release()
            LEASES.labels("released").inc()
            log.debug("lease released partition=%d lease=%s", self.partition, lease)
        self.forget()
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
        snapshots = await self.snapshots.load(self.projection, list(groups))
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
                self.snapshots.wrote(folded.writes, [q.letter.ref for q in folded.quarantines])
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
            self.held.lost()
        elif outcome == CHECKPOINT_MOVED:
            log.warning("checkpoint moved partition=%d expected=%s", self.partition, checkpoint)
        elif outcome == SNAPSHOT_MOVED:
            log.info("snapshot moved under the batch partition=%d checkpoint=%s: read again", self.partition,
                     checkpoint)
        self.forget()
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
            self.forget()

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
            worker.forget()

    async def run(self, stop: asyncio.Event) -> None:
        self.use_generation(await live_generation(self.projection.redis, self.projection.keys))
        tasks = [asyncio.create_task(self._run_worker(worker, stop)) for worker in self.workers]
        try:
            await repeat("projector heartbeat", self._heartbeat, stop, BACKOFF, on_error=_count_error)
        finally:
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.membership.leave()

    async def _heartbeat(self) -> float:
        await self.membership.heartbeat()
        generation = await live_generation(self.projection.redis, self.projection.keys)
        if generation != self.projection.keys.generation:
            self.use_generation(generation)
        self.membership.report_held([w.partition for w in self.workers if w.lease is not None], len(self.workers))
        return self.settings.renew_every_s

    def held(self) -> int:
        return sum(1 for worker in self.workers if worker.lease is not None)

    async def _run_worker(self, worker: PartitionWorker, stop: asyncio.Event) -> None:
        """The partition's loop: a Redis outage or a bug must not end it for good (runtime.repeat retries)."""

        def forget(exc: Exception) -> None:
            _count_error(exc)
            worker.forget()

        try:
            await repeat(f"projector partition={worker.partition}", lambda: self._turn(worker), stop, BACKOFF,
                         on_error=forget)
        finally:
            with contextlib.suppress(Exception):
                await worker.release()

    async def _turn(self, worker: PartitionWorker) -> float:
        """One turn; returns how long to wait before the next (0: at once)."""
        share = self.membership.share(len(self.workers))
        holding = worker.lease is not None
        await worker.keep_lease((holding and self.held() <= share) or (not holding and self.held() < share))
        if worker.lease is None or worker.halted:
            await worker.check_halt()
            return self.settings.lease_ttl_ms / 1000 / IDLE_LOOKS_PER_TTL
        await worker.step()
        await worker.tick()
        if self.retention is not None:
            await self.retention.maybe_run(worker.partition)
        return 0.0


def _count_error(exc: Exception) -> None:
    ERRORS.inc()

