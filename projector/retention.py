"""The retention task: for each partition a projector holds, every interval, one bounded round of trimming (the
feed, the alerts stream with its emitted keys, the operations stream), as store/retention.py allows."""

import logging
import time
from collections.abc import Callable
from datetime import datetime

import msgspec

from projector.clock import wall_clock
from projector.metrics import RETAINED, RETENTION_ERRORS
from store.retention import Retention

log = logging.getLogger("tally.retention")


class RetentionSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Built from the process's Settings by cli/components.py (the defaults live there, once)."""

    interval_ms: int
    trim_feed: bool  # False with TALLY_TRIM_EVERY_BATCHES=0: the feed is kept whole
    batch: int  # most alerts-stream entries removed per partition and round
    alerts_keep_ms: int
    operations_keep_ms: int


class Retained(msgspec.Struct, frozen=True):
    """What one round removed from one partition."""

    feed: int = 0
    alerts: int = 0
    operations: int = 0


class PartitionRetention:
    """`now` is the time retention ages by (injected by tests); the interval runs on the monotonic clock."""

    def __init__(self, retention: Retention, settings: RetentionSettings,
                 now: Callable[[], datetime] = wall_clock) -> None:
        self.retention = retention
        self.settings = settings
        self.now = now
        self.next_round: dict[int, float] = {}

    async def maybe_run(self, partition: int) -> Retained | None:
        """One round for `partition` when its interval has passed since the last one (a failure is logged and
        counted, and tried again next interval)."""
        if time.monotonic() < self.next_round.get(partition, 0.0):
            return None
        self.next_round[partition] = time.monotonic() + self.settings.interval_ms / 1000
        try:
            return await self.run(partition)
        except Exception as exc:  # Redis down, a bug: folding goes on, retention tries again next round
            RETENTION_ERRORS.labels("partition").inc()
            log.warning("retention round failed partition=%d: %s: %s", partition, type(exc).__name__, exc)
            return None

    async def run(self, partition: int) -> Retained:
        now_ms = int(self.now().timestamp() * 1000)
        done = Retained(
            feed=await self.retention.trim_feed(partition) if self.settings.trim_feed else 0,
            alerts=await self.retention.trim_alerts(partition, now_ms, self.settings.alerts_keep_ms,
                                                    self.settings.batch),
            operations=await self.retention.trim_operations(partition, now_ms, self.settings.operations_keep_ms),
        )
        for structure in Retained.__struct_fields__:
            RETAINED.labels(structure).inc(getattr(done, structure))
        if done.alerts or done.operations:
            log.info("retention partition=%d feed=%d alerts=%d operations=%d", partition, done.feed, done.alerts,
                     done.operations)
        return done
