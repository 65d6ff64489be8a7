"""The projector's clock: appends the period closes and lot expiries that time makes due, once each."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError

from domain.clock import due_events, next_due
from domain.identity import AccountRef
from projector.metrics import CLOCK_EVENTS
from store.eventstore import Dedup, EventStore
from store.projection import Projection

log = logging.getLogger("tally.clock")
RETRY_MS = 5000
ACCOUNTS_PER_TICK = 200


def wall_clock() -> datetime:
    return datetime.now(UTC)


class PartitionClock:
    """Finds the accounts due in a partition and appends their clock events with deterministic, deduplicated ids."""

    def __init__(
        self, store: EventStore, projection: Projection, grace: timedelta, now: Callable[[], datetime] = wall_clock
    ) -> None:
        self.store = store
        self.projection = projection
        self.grace = grace
        self.now = now

    def use_generation(self, generation: int) -> None:
        self.store.use_generation(generation)

    async def run(self, partition: int) -> int:
        now = self.now()
        now_ms = int(now.timestamp() * 1000)
        appended = 0
        for ref in await self.projection.due_accounts(partition, now_ms, ACCOUNTS_PER_TICK):
            try:
                appended += await self._run_one(partition, ref, now)
            except RedisError:
                raise
            except Exception:  # one account's failure must not stop the clock of the others
                log.exception("clock error partition=%d customer=%r; retried later", partition, ref.customer_id)
                await self.projection.postpone(partition, ref, now_ms + RETRY_MS)
        if appended:
            log.info("clock partition=%d appended=%d", partition, appended)
        return appended

    async def _run_one(self, partition: int, ref: AccountRef, now: datetime) -> int:
        now_ms = int(now.timestamp() * 1000)
        read = await self.store.read_account(ref)
        if read.quarantined is not None:  # nothing is due until an operator releases it (that reschedules it)
            await self.projection.unschedule(partition, ref)
            return 0
        events = due_events(read.account, now, self.grace)
        position, appended = read.account.position, 0
        for event in events:
            # Only if nothing landed since the read: a top-up decided on a stale balance must not be appended.
            result = await self.store.append(ref, [event], Dedup(scope="clock", key=event.id), expect=position)
            if result.status != "appended":
                break
            position = result.positions[-1]
            appended += 1
            CLOCK_EVENTS.labels(type(event).__name__).inc()
        if events:
            await self.projection.postpone(partition, ref, now_ms + RETRY_MS)
        else:
            due = next_due(read.account, self.grace)
            await self.projection.postpone(partition, ref, now_ms + RETRY_MS if due is None or due <= now
                                           else int(due.timestamp() * 1000))
        return appended
