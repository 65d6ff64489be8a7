"""The webhook sender: turns notices-stream entries into signed deliveries, at least once, with backoff.

One sender holds the fenced lease; its loop queues new notices, then starts due attempts as tasks of their own
within the bounds of `Slots` (global, per tenant, per endpoint) and goes on: a slow endpoint holds its own slots
only. Each attempt is claimed in the queue until its deadline passes (so a crash retries it), and its result is
written only while the lease is still this sender's. Store errors are logged, counted and retried with backoff;
on stop the sender finishes its attempts (each bounded by its deadline) and gives the lease back.
"""

import asyncio
import logging
import random
import time
from collections import Counter

import httpx
import msgspec

from domain.codec import decode_notice
from projector.metrics import (
    RETAINED,
    RETENTION_ERRORS,
    WEBHOOK_ERRORS,
    WEBHOOK_IN_FLIGHT,
    WEBHOOK_LEASES,
    WEBHOOKS,
)
from projector.runtime import Backoff, repeat
from projector.slots import Slots
from projector.webhook_payloads import payload
from projector.webhook_post import Outcome, post
from store.retention import Retention
from store.webhooks import Delivery, Endpoint, Webhooks, delivery_id

log = logging.getLogger("tally.webhooks")
CLAIM_GRACE_MS = 2000  # beyond the deadline, before a claimed attempt counts as abandoned and is retried


class SenderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Built from the process's Settings by cli/components.py; only what no TALLY_* variable sets has a default."""

    holder: str
    max_attempts: int
    backoff_base_ms: int
    timeout_ms: int  # the total deadline of one attempt
    lease_ttl_ms: int
    concurrency: int
    concurrency_per_tenant: int
    concurrency_per_endpoint: int
    retention_interval_ms: int
    retention_batch: int
    delivery_keep_ms: int  # finished (delivered or dead) deliveries are kept this long
    backoff_max_ms: int = 600_000
    poll_ms: int = 200
    batch: int = 500
    error_backoff_max_ms: int = 5000


def backoff_ms(attempts: int, base_ms: int, max_ms: int, jitter: float) -> int:
    """Exponential in the attempts made, capped, scaled by a jitter factor in [0.5, 1]."""
    return int(min(max_ms, base_ms * 2 ** max(0, attempts - 1)) * jitter)


def _now_ms() -> int:
    return int(time.time() * 1000)


class WebhookSender:
    def __init__(self, webhooks: Webhooks, settings: SenderSettings, client: httpx.AsyncClient) -> None:
        self.webhooks = webhooks
        self.settings = settings
        self.client = client
        self.partitions = webhooks.keys.partitions
        self.held = webhooks.lease(settings.holder, settings.lease_ttl_ms)
        self.slots = Slots(settings.concurrency, settings.concurrency_per_tenant, settings.concurrency_per_endpoint)
        self.running: dict[str, asyncio.Task[None]] = {}
        self.wake = asyncio.Event()
        self.next_prune = 0.0

    @property
    def lease(self) -> str | None:
        """The fencing token of the sender's lease while this sender holds it (store/lease.py)."""
        return self.held.value

    @lease.setter
    def lease(self, value: str | None) -> None:
        self.held.value = value

    async def keep_lease(self) -> bool:
        held = self.lease
        await self.held.keep()
        if self.lease != held:
            WEBHOOK_LEASES.labels("taken" if self.lease else "lost").inc()
            log.info("webhook sender lease held=%s now=%s", held, self.lease)
        return self.lease is not None

    def lost_lease(self, during: str) -> None:
        WEBHOOK_LEASES.labels("lost").inc()
        log.warning("webhook sender lease lost lease=%s during=%s: nothing written", self.lease, during)
        self.held.lost()

    async def queue_new(self) -> int:
        """Create a delivery per (notice, matching endpoint) for every notice after each partition's checkpoint."""
        queued = 0
        for partition in range(self.partitions):
            if self.lease is None:
                break
            checkpoint = await self.webhooks.checkpoint(partition)
            notices = await self.webhooks.read_notices(partition, checkpoint, self.settings.batch)
            if not notices:
                continue
            now_ms = _now_ms()
            deliveries: list[Delivery] = []
            endpoints: dict[tuple[str, str], list[Endpoint]] = {}
            for entry in notices:
                notice = decode_notice(entry.payload)
                tenant = (notice.tenant_id, notice.environment_id)
                if tenant not in endpoints:
                    endpoints[tenant] = await self.webhooks.endpoints(*tenant)
                event_type = notice.event_type
                deliveries += [Delivery(
                    id=delivery_id(entry.key, endpoint.id), endpoint_id=endpoint.id, tenant_id=tenant[0],
                    environment_id=tenant[1], event_type=event_type,
                    payload=payload(notice, entry.payload, endpoint.payload_format),
                    created_ms=now_ms,
                ) for endpoint in endpoints[tenant] if not endpoint.event_types or event_type in endpoint.event_types]
            if not await self.webhooks.enqueue(self.lease, partition, notices[-1].position, deliveries, now_ms):
                self.lost_lease("enqueue")
                break
            queued += len(deliveries)
        return queued

    def plan(self, due: list[Delivery], now_ms: int) -> tuple[list[Delivery], dict[str, int]]:
        """Which due deliveries start now (slots taken), and new due times: claims, and later turns for the rest."""
        deadline_ms = self.settings.timeout_ms
        starting: list[Delivery] = []
        moves: dict[str, int] = {}
        waiting: Counter[str] = Counter()
        for delivery in due:
            if delivery.id in self.running:
                continue
            tenant = f"{delivery.tenant_id}\x1f{delivery.environment_id}"
            full = self.slots.take(tenant, delivery.endpoint_id)
            if full == "total":
                break
            if full is None:
                starting.append(delivery)
                moves[delivery.id] = now_ms + deadline_ms + CLAIM_GRACE_MS
                continue
            scope = delivery.endpoint_id if full == "endpoint" else tenant
            waiting[scope] += 1
            wait_s = self.slots.wait_seconds(full, delivery.endpoint_id, waiting[scope],
                                             self.settings.poll_ms / 1000, deadline_ms / 1000)
            moves[delivery.id] = now_ms + int(wait_s * 1000)
        return starting, moves

    async def dispatch(self) -> int:
        """Start every due attempt the slots allow, each as its own task; returns how many started."""
        if self.lease is None or self.slots.free() <= 0:
            return 0
        now_ms = _now_ms()
        starting, moves = self.plan(await self.webhooks.due(now_ms, self.settings.batch), now_ms)
        claimed = bool(moves) and await self.webhooks.claim(self.lease, moves)
        for delivery in starting:
            if claimed:
                self.running[delivery.id] = asyncio.create_task(self.attempt(self.lease, delivery))
            else:
                self.slots.give(f"{delivery.tenant_id}\x1f{delivery.environment_id}", delivery.endpoint_id, None)
        if moves and not claimed:
            self.lost_lease("claim")
        WEBHOOK_IN_FLIGHT.set(len(self.running))
        return len(starting) if claimed else 0

    async def attempt(self, lease: str, delivery: Delivery) -> None:
        """One attempt, its result recorded under `lease`; its slot is given back whatever happens."""
        started = time.monotonic()
        took: float | None = None
        try:
            took = await self.deliver(lease, delivery)
        except Exception:  # a store error around the attempt: the claim expires and it is tried again
            WEBHOOK_ERRORS.labels("attempt").inc()
            log.exception("webhook attempt id=%s not recorded; retried after its claim expires", delivery.id)
        finally:
            self.running.pop(delivery.id, None)
            self.slots.give(f"{delivery.tenant_id}\x1f{delivery.environment_id}", delivery.endpoint_id,
                            took if took is not None else time.monotonic() - started)
            WEBHOOK_IN_FLIGHT.set(len(self.running))
            self.wake.set()

    async def deliver(self, lease: str, delivery: Delivery) -> float | None:
        """Post, classify, record; returns how long the post took (None when nothing was posted)."""
        endpoint = next((e for e in await self.webhooks.endpoints(delivery.tenant_id, delivery.environment_id)
                         if e.id == delivery.endpoint_id), None)
        delivery.attempts += 1
        took = None
        if endpoint is None:
            outcome = Outcome(0, "endpoint_deleted")
        else:
            started = time.monotonic()
            outcome = await post(self.client, endpoint.url, endpoint.secret, delivery.id, delivery.payload.encode(),
                                 self.settings.timeout_ms / 1000)
            took = time.monotonic() - started
        WEBHOOKS.labels(outcome.metric).inc()
        if not outcome.ok:
            log.warning("webhook attempt failed id=%s endpoint=%s tenant=%s/%s attempt=%d class=%s detail=%s",
                        delivery.id, delivery.endpoint_id, delivery.tenant_id, delivery.environment_id,
                        delivery.attempts, outcome.error, outcome.detail)
        self.settle(delivery, outcome)
        if not await self.webhooks.record(lease, delivery, self.next_attempt_ms(delivery), _now_ms()):
            WEBHOOK_ERRORS.labels("fenced").inc()
            log.warning("webhook attempt id=%s not recorded: lease %s is not held any more", delivery.id, lease)
        return took

    def settle(self, delivery: Delivery, outcome: Outcome) -> None:
        delivery.last_status, delivery.last_error = outcome.status, outcome.error
        if outcome.ok:
            delivery.status, delivery.delivered_ms = "delivered", _now_ms()
        elif outcome.error == "endpoint_deleted" or delivery.attempts >= self.settings.max_attempts:
            delivery.status = "dead"
            log.warning("webhook dead-lettered id=%s endpoint=%s attempts=%d", delivery.id, delivery.endpoint_id,
                        delivery.attempts)

    def next_attempt_ms(self, delivery: Delivery) -> int | None:
        if delivery.status != "pending":
            return None
        return _now_ms() + backoff_ms(delivery.attempts, self.settings.backoff_base_ms, self.settings.backoff_max_ms,
                                      random.uniform(0.5, 1.0))

    async def step(self) -> bool:
        """Renew the lease, queue new notices, start due attempts; True when there was work."""
        self.wake.clear()
        if not await self.keep_lease():
            return False
        queued = await self.queue_new()
        started = await self.dispatch()
        await self.prune(_now_ms())
        if queued or started:
            log.info("webhooks queued=%d started=%d in_flight=%d", queued, started, len(self.running))
        return bool(queued or started)

    async def prune(self, now_ms: int) -> int:
        """Remove finished deliveries older than their retention: one bounded batch per interval, by the lease
        holder only; a failure is logged, counted and tried again next interval."""
        if self.lease is None or time.monotonic() < self.next_prune:
            return 0
        self.next_prune = time.monotonic() + self.settings.retention_interval_ms / 1000
        retention = Retention(self.webhooks.redis, self.webhooks.keys)
        try:
            removed = await retention.prune_deliveries(now_ms, self.settings.delivery_keep_ms,
                                                       self.settings.retention_batch)
        except Exception as exc:
            RETENTION_ERRORS.labels("deliveries").inc()
            log.warning("webhook delivery retention failed: %s: %s", type(exc).__name__, exc)
            return 0
        RETAINED.labels("deliveries").inc(removed)
        return removed

    async def run(self, stop: asyncio.Event) -> None:
        """Turns until `stop` under the shared runtime (Redis restarting, a timeout, a bug: the loop outlives it,
        retrying after twice the poll interval, doubling up to error_backoff_max_ms); then shut down."""
        backoff = Backoff(first_s=self.settings.poll_ms * 2 / 1000, max_s=self.settings.error_backoff_max_ms / 1000)
        try:
            await repeat("webhook sender", self.turn, stop, backoff, wake=self.wake,
                         on_error=lambda exc: WEBHOOK_ERRORS.labels("loop").inc())
        finally:
            await self.shut_down()

    async def turn(self) -> float:
        """One step; at once again when there was work, else after the poll interval (or when an attempt ends)."""
        return 0.0 if await self.step() else self.settings.poll_ms / 1000

    async def shut_down(self) -> None:
        """Let the attempts in progress end (each within its deadline), then give the lease back."""
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=self.settings.timeout_ms / 1000 + 1)
        for task in list(self.running.values()):
            task.cancel()
        if self.lease is not None:
            lease = self.lease
            try:
                await self.held.release()
                WEBHOOK_LEASES.labels("released").inc()
                log.info("webhook sender lease released lease=%s", lease)
            except Exception as exc:  # Redis is down: the lease simply expires
                WEBHOOK_ERRORS.labels("release").inc()
                log.warning("webhook sender lease not released (%s: %s); it expires", type(exc).__name__, exc)
            self.held.lost()
