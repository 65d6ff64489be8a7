"""The crash and fault scenarios' writer (top-ups single and bulk, debits, retries, short-lived lots; it remembers
every append Redis acknowledged), their position monitor (invariant 4) and their last wait before an audit."""

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from api.accounts import Accounts
from domain.clock import due_events
from domain.commands import AnyCommand, CreateWallet, DebitWallet, TopUpWallet
from domain.errors import InvalidOperation
from domain.events import CreditsGranted
from domain.identity import AccountRef
from domain.settings import AlertSettings, AlertThreshold
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from store.positions import ORIGIN, parse
from store.projection import Projection
from tests.support.catchup import lag

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
