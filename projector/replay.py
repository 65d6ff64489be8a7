"""Rebuild projections from the customer streams into a new generation while the live one serves, then switch.

For every partition: note the feed head, fold each account's whole stream from zero into the next
generation's snapshot, and set that generation's checkpoint to the noted head (entries after it that an
account has already folded are skipped by position). Trimming stays above the noted head until the switch.
Then the generation pointer moves: the API and the projectors follow it within a second or two, and the old
generation's keys are removed once nobody reads them. Real-time reads stay exact throughout (snapshot + tail).
"""

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from domain.clock import next_due
from domain.codec import decode_account, encode_account
from domain.fold import fold
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT
from store.eventstore import EventStore, encode_ref
from store.generation import live_generation, switch_generation
from store.keys import Keys
from store.positions import ORIGIN, is_after, text
from store.verify import Drift, differences

FLOOR_TTL_S = 3600
SWITCH_SETTLE_S = 3.0


class ReplayReport(msgspec.Struct):
    accounts: int = 0
    events: int = 0
    seconds: float = 0.0
    generation: int = 0
    switched: bool = False
    drifts: list[Drift] = []

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


Progress = Callable[[int, int], None]  # (events done, events in all)


class Replayer:
    def __init__(self, redis: Redis, keys: Keys, grace: timedelta, dedup_ttl_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        self.grace = grace
        self.store = EventStore(redis, keys, dedup_ttl_seconds)

    async def plan(self) -> tuple[list[list[AccountRef]], int]:
        """Accounts per partition, and how many events their streams hold in all."""
        partitions = [await self.store.accounts(p) for p in range(self.keys.partitions)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for refs in partitions:
                for ref in refs:
                    pipe.xlen(self.keys.log(ref))
            lengths: list[Any] = await pipe.execute()
        return partitions, sum(int(n) for n in lengths)

    async def rebuild_all(self, dry_run: bool, progress: Progress) -> ReplayReport:
        started = time.perf_counter()
        live = await live_generation(self.redis, self.keys)
        target = msgspec.structs.replace(self.keys, generation=live + 1)
        report = ReplayReport(generation=target.generation)
        partitions, total = await self.plan()
        for partition, refs in enumerate(partitions):
            head, added = await self._hold_floor(partition) if not dry_run else (ORIGIN, 0)
            for ref in refs:
                account = await self._fold(ref)
                report.accounts += 1
                report.events += account.applied
                if dry_run:
                    report.drifts.extend(await self._compare(ref, account))
                else:
                    await self._write(target, ref, account)
                progress(report.events, total)
            if not dry_run:
                await self._start_at(target, partition, head, added)
        report.seconds = time.perf_counter() - started  # the rebuild itself, without the switch's settling
        if not dry_run:
            await switch_generation(self.redis, self.keys, target.generation)
            report.switched = True
            await asyncio.sleep(SWITCH_SETTLE_S)  # let readers and projectors move to the new generation
            await self._drop_generation(msgspec.structs.replace(self.keys, generation=live), partitions)
            for partition in range(self.keys.partitions):
                await self.redis.delete(self.keys.retention_floor(partition))
        return report

    async def rebuild_one(self, ref: AccountRef, dry_run: bool) -> ReplayReport:
        """One account: fold from zero and swap its live snapshot atomically (unless the live one moved past it)."""
        started = time.perf_counter()
        live = await live_generation(self.redis, self.keys)
        keys = msgspec.structs.replace(self.keys, generation=live)
        account = await self._fold(ref)
        report = ReplayReport(accounts=1, events=account.applied, generation=live)
        if dry_run:
            report.drifts = await self._compare(ref, account)
        else:
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(keys.snapshot(ref))
                current: Any = await pipe.hget(keys.snapshot(ref), "p")
                if current is None or not is_after(text(current), account.position):
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(keys.snapshot(ref), mapping={"p": account.position, "s": encode_account(account)})
                    await pipe.execute()
                    report.switched = True
        report.seconds = time.perf_counter() - started
        return report

    async def _fold(self, ref: AccountRef) -> Any:
        return fold(EMPTY_ACCOUNT, await self.store.read_log(ref))

    async def _compare(self, ref: AccountRef, account: Any) -> list[Drift]:
        keys = msgspec.structs.replace(self.keys, generation=await live_generation(self.redis, self.keys))
        raw: Any = await self.redis.hmget(keys.snapshot(ref), ["p", "s"])
        live = decode_account(raw[1]) if raw[1] else EMPTY_ACCOUNT
        if live.position != account.position:
            return []  # the live projection is behind or ahead of this fold: not comparable field by field
        return differences(ref, live, account)

    async def _write(self, target: Keys, ref: AccountRef, account: Any) -> None:
        due = next_due(account, self.grace)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(target.snapshot(ref), mapping={"p": account.position, "s": encode_account(account), "t": ""})
            if due is not None:
                pipe.zadd(target.due(target.partition_of(ref)), {encode_ref(ref): int(due.timestamp() * 1000)})
            await pipe.execute()

    async def _hold_floor(self, partition: int) -> tuple[str, int]:
        """The feed head now and the entries added up to it; nothing at or above it is trimmed until the switch."""
        try:
            info: Any = await self.redis.xinfo_stream(self.keys.feed(partition))
        except ResponseError:  # no feed yet: nothing was ever appended to this partition
            info = {}
        head = info.get("last-generated-id") or info.get(b"last-generated-id")
        head = text(head) if head else ORIGIN
        added = int(info.get("entries-added") or info.get(b"entries-added") or 0)
        await self.redis.set(self.keys.retention_floor(partition), head, ex=FLOOR_TTL_S)
        return head, added

    async def _start_at(self, target: Keys, partition: int, head: str, added: int) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(target.checkpoint(partition), head)
            pipe.set(target.folded(partition), added)
            await pipe.execute()

    async def _drop_generation(self, old: Keys, partitions: list[list[AccountRef]]) -> None:
        for partition, refs in enumerate(partitions):
            names = [old.snapshot(ref) for ref in refs]
            names += [old.checkpoint(partition), old.due(partition), old.folded(partition)]
            for start in range(0, len(names), 500):
                await self.redis.unlink(*names[start:start + 500])
