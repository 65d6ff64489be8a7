"""Rebuild projections from the customer streams into a new generation while the live one serves, then switch.

For every partition: note the feed head, fold each account's whole stream from zero into the next
generation's snapshot, and set that generation's checkpoint to the noted head (entries after it that an
account has already folded are skipped by position). Trimming stays above the noted head until the switch (the
floor is renewed while the replay runs and removed at its end). An account whose history cannot be folded is
reported and rebuilt quarantined (its snapshot at the last entry that folded, with a dead-letter record).
Then the generation pointer moves: the API and the projectors follow it within a second or two, and the old
generation's keys are removed SWITCH_SETTLE_S (3 s) later. Nothing checks that every reader has moved by then: the
wait is a time, not a confirmation. Real-time reads stay exact throughout (snapshot + tail).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from itertools import chain
from typing import Any, TypeVar, cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from domain.clock import next_due
from domain.codec import decode_account, encode_account, encode_ref
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT
from projector.runtime import heap_frozen
from store.entries import LogFold, fold_log
from store.eventstore import EventStore
from store.floors import FLOOR_TTL_S, RetentionFloors
from store.generation import live_generation, switch_generation
from store.keys import Keys
from store.ledger import DEFAULT_KEEP, ledger_differences, ledger_hashes, load_with_snapshot, queue_ledger
from store.letters import DeadLetter, now_ms
from store.node_links import NodeLinks, run_together
from store.pipelined import PipelinedConnection
from store.positions import ORIGIN, is_after, text
from store.quarantine import Quarantines
from store.verify import Drift, differences

SWITCH_SETTLE_S = 3.0
CHUNK = 16
"""Accounts read in one round trip and written in one transaction: few enough that a partition (~60 accounts a
partition at 1,000 customers on 16) has several chunks, whose reads and writes overlap the folds."""
T = TypeVar("T")


async def _started(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """`work` as a task that has sent its commands (it ran up to its first wait for a reply) and is waiting."""
    task = asyncio.create_task(work)
    await asyncio.sleep(0)
    return task


class ReplayReport(msgspec.Struct):
    accounts: int = 0
    events: int = 0
    seconds: float = 0.0
    generation: int = 0
    switched: bool = False
    drifts: list[Drift] = []
    quarantined: list[DeadLetter] = []

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


Progress = Callable[[int, int], None]  # (events done, events in all)


class Replayer:
    def __init__(
        self, redis: Redis, keys: Keys, grace: timedelta, dedup_ttl_seconds: int, floor_ttl_s: float = FLOOR_TTL_S,
        ledger_keep: int = DEFAULT_KEEP,
    ) -> None:
        """`ledger_keep`: the ledger entries Redis keeps per wallet (the projectors' TALLY_LEDGER_KEEP)."""
        self.redis = redis
        self.ledger_keep = ledger_keep
        self.keys = keys
        self.grace = grace
        self.store = EventStore(redis, keys, dedup_ttl_seconds)
        self.floor_ttl_s = floor_ttl_s
        self.direct: PipelinedConnection | None = None  # a rebuild's own connection (rebuild_all)
        self.links: NodeLinks | None = None  # its connections (one per primary on a cluster)

    async def plan(self) -> tuple[list[list[AccountRef]], int]:
        """Accounts per partition, and how many events their streams hold in all."""
        partitions = [await self.store.accounts(p) for p in range(self.keys.partitions)]
        lengths = await run_together(self.redis, self.direct, [("XLEN", self.keys.log(ref))
                                                               for refs in partitions for ref in refs])
        return partitions, sum(int(n) for n in lengths)

    async def rebuild_all(self, dry_run: bool, progress: Progress) -> ReplayReport:
        live = await live_generation(self.redis, self.keys)
        target = msgspec.structs.replace(self.keys, generation=live + 1)
        async with RetentionFloors(self.redis, self.keys, self.floor_ttl_s).kept() as floors:
            with heap_frozen():
                async with self._own_connection():
                    report = await self._rebuild(target, None if dry_run else floors, progress)
            if not dry_run:
                await switch_generation(self.redis, self.keys, target.generation)
                report.switched = True
                await asyncio.sleep(SWITCH_SETTLE_S)  # let readers and projectors move to the new generation
                await self._drop_generation(msgspec.structs.replace(self.keys, generation=live))
        return report

    @asynccontextmanager
    async def _own_connection(self) -> AsyncIterator[None]:
        """The rebuild's page reads and writes go over connections of its own (store/node_links.py: a batch of
        commands costs one waiter, not redis-py's path a command: ~2 against ~8 us of CPU a command; on a cluster,
        redis-py's transactions cost far more): on a single server one, on a cluster one per primary, a partition's
        over its primary's (`_on_node_of`). A batch that fails on it, or that a cluster node did not run, runs again
        through redis-py (reading, and rewriting the same values, may run twice). Closed when the rebuild ends. It
        waits for a reply as long as the client's own connections do (a silent server fails the batch)."""
        self.links = NodeLinks.of(self.redis)
        self._use(self.links.single if self.links is not None else None)
        try:
            yield
        finally:
            links, self.links = self.links, None
            self._use(None)
            if links is not None:
                await links.aclose()

    def _use(self, direct: PipelinedConnection | None) -> None:
        self.direct = self.store.log_reader.direct = direct

    @contextmanager
    def _on_node_of(self, partition: int) -> Iterator[None]:
        """On a cluster, the partition's reads and writes over its primary's connection (its keys share one slot,
        in every generation); other commands keep the client, which routes each."""
        if self.links is None or self.links.single is not None:
            yield
            return
        self._use(self.links.link(self.keys.feed(partition)))
        try:
            yield
        finally:
            self._use(None)

    async def _rebuild(self, target: Keys, floors: RetentionFloors | None, progress: Progress) -> ReplayReport:
        """Fold every account into `target` (compare with the live generation when `floors` is None: a dry run)."""
        started = time.perf_counter()
        report = ReplayReport(generation=target.generation)
        partitions, total = await self.plan()
        for partition, refs in enumerate(partitions):
            with self._on_node_of(partition):
                head, added = await self._hold_floor(floors, partition) if floors else (ORIGIN, 0)
                await self.store.archive.preload(partition)  # each segment read once, not once per account
                await self._rebuild_partition(target, floors is None, refs, report,
                                              lambda: progress(report.events, total))
                self.store.archive.forget(partition)
                if floors is not None:
                    await self._start_at(target, partition, head, added)
        report.seconds = time.perf_counter() - started  # the rebuild itself, without the switch's settling
        return report

    async def _rebuild_partition(self, target: Keys, dry_run: bool, refs: list[AccountRef], report: ReplayReport,
                                 progress: Callable[[], None]) -> None:
        """The partition's accounts, CHUNK at a time: the next chunk's read and the last chunk's write are in flight
        while a chunk folds (Redis serves them on its own core meanwhile); every write has finished on return."""
        chunks = [refs[start:start + CHUNK] for start in range(0, len(refs), CHUNK)]
        reading = await _started(self.store.read_raw_logs(chunks[0])) if chunks else None
        writing: asyncio.Task[None] | None = None
        try:
            for index, chunk in enumerate(chunks):
                assert reading is not None
                logs = await reading
                if index + 1 < len(chunks):
                    reading = await _started(self.store.read_raw_logs(chunks[index + 1]))
                results = [fold_log(EMPTY_ACCOUNT, log, self.store.rate_cards) for log in logs]
                letters = [await self._dead_letter(ref, result) for ref, result in zip(chunk, results, strict=True)]
                for ref, result, letter in zip(chunk, results, letters, strict=True):
                    report.accounts += 1
                    report.events += result.account.applied
                    if letter is not None:
                        report.quarantined.append(letter)
                    if dry_run:
                        report.drifts.extend(await self._compare(ref, result) if letter is None else [])
                    progress()
                if not dry_run:
                    if writing is not None:
                        await writing
                    writing = await _started(self._write(target, list(zip(chunk, results, letters, strict=True))))
            if writing is not None:
                await writing
        finally:
            for task in (reading, writing):
                if task is not None and not task.done():
                    task.cancel()

    async def rebuild_one(self, ref: AccountRef, dry_run: bool) -> ReplayReport:
        """One account: fold from zero and swap its live snapshot atomically (unless the live one moved past it).
        An account whose history cannot be folded is reported and left as it is."""
        started = time.perf_counter()
        live = await live_generation(self.redis, self.keys)
        keys = msgspec.structs.replace(self.keys, generation=live)
        result = await self._fold(ref)
        account, letter = result.account, await self._dead_letter(ref, result)
        report = ReplayReport(accounts=1, events=account.applied, generation=live)
        if letter is not None:
            report.quarantined = [letter]
        elif dry_run:
            report.drifts = await self._compare(ref, result)
        else:
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(keys.snapshot(ref))
                current = await pipe.hget(keys.snapshot(ref), "p")
                if current is None or not is_after(text(current), account.position):
                    begin = cast(Callable[[], None], pipe.multi)  # redis-py leaves `multi` unannotated
                    begin()
                    pipe.hset(keys.snapshot(ref), mapping={"p": account.position, "s": encode_account(account)})
                    queue_ledger(pipe, keys, ref, result.ledger, account, self.ledger_keep)
                    await pipe.execute()
                    report.switched = True
        report.seconds = time.perf_counter() - started
        return report

    async def _fold(self, ref: AccountRef) -> LogFold:
        return fold_log(EMPTY_ACCOUNT, await self.store.read_raw_log(ref), self.store.rate_cards)

    async def _dead_letter(self, ref: AccountRef, result: LogFold) -> DeadLetter | None:
        """The record of an account whose history does not fold; the live one's feed position when it has one."""
        if result.failed is None:
            return None
        live = await Quarantines(self.redis, await self._live_keys()).get(ref)
        feed_position = live.feed_position if live and live.log_position == result.failed.position else ""
        return DeadLetter(ref=ref, kind="fold", log_position=result.failed.position, feed_position=feed_position,
                          reason=result.reason, raw=result.failed.payload, rates=result.failed.rates, at_ms=now_ms())

    async def _live_keys(self) -> Keys:
        return msgspec.structs.replace(self.keys, generation=await live_generation(self.redis, self.keys))

    async def _compare(self, ref: AccountRef, result: LogFold) -> list[Drift]:
        """The live snapshot and its stored ledger against this fold, field by field."""
        keys = msgspec.structs.replace(self.keys, generation=await live_generation(self.redis, self.keys))
        raw, ledger = await load_with_snapshot(self.redis, keys, ref)
        live = decode_account(raw[1]) if raw[1] else EMPTY_ACCOUNT
        if live.position != result.account.position:
            return []  # the live projection is behind or ahead of this fold: not comparable field by field
        found = ledger_differences(ledger, result.ledger, result.account, self.ledger_keep)
        return differences(ref, live, result.account) + [Drift(ref, *difference) for difference in found]

    async def _write(self, target: Keys, folded: list[tuple[AccountRef, LogFold, DeadLetter | None]]) -> None:
        """The accounts' snapshots, stored ledgers, clock schedule and quarantine records, in one transaction: the
        old ledgers deleted first, and the schedule and quarantine records of a partition in one command each."""
        due: dict[str, list[Any]] = {}
        quarantined: dict[str, list[Any]] = {}
        commands: list[tuple[Any, ...]] = [
            ("DEL", *(key for ref, _, _ in folded for key in (target.ledger(ref), target.ledger_ids(ref))))]
        for ref, result, letter in folded:
            account = result.account
            snapshot: list[Any] = ["p", account.position, "s", encode_account(account), "t", ""]
            member, partition = encode_ref(ref), target.partition_of(ref)
            if letter is not None:
                snapshot += ["q", letter.summary]
                quarantined.setdefault(target.quarantined(partition), []).extend((member, letter.encode()))
            elif (when := next_due(account, self.grace)) is not None:
                due.setdefault(target.due(partition), []).extend((int(when.timestamp() * 1000), member))
            commands.append(("HSET", target.snapshot(ref), *snapshot))
            commands += [("HSET", key, *chain.from_iterable(fields.items()))
                         for key, fields in ledger_hashes(target, ref, result.ledger, account, self.ledger_keep)]
        commands += [("HSET", key, *records) for key, records in quarantined.items()]
        commands += [("ZADD", key, *members) for key, members in due.items()]
        await run_together(self.redis, self.direct, commands, transaction=True)

    async def _hold_floor(self, floors: RetentionFloors, partition: int) -> tuple[str, int]:
        """The feed head now and the entries added up to it; nothing at or above it is trimmed until the switch."""
        try:
            info = await self.redis.xinfo_stream(self.keys.feed(partition))  # redis-py decodes its field names
        except ResponseError:  # no feed yet: nothing was ever appended to this partition
            info = {}
        last: bytes | str | None = info.get("last-generated-id")
        head = text(last) if last else ORIGIN
        added = int(info.get("entries-added") or 0)
        await floors.hold(partition, head)
        return head, added

    async def _start_at(self, target: Keys, partition: int, head: str, added: int) -> None:
        await run_together(self.redis, self.direct, [("SET", target.checkpoint(partition), head),
                                                     ("SET", target.folded(partition), added)], transaction=True)

    async def _drop_generation(self, old: Keys) -> None:
        for partition in range(self.keys.partitions):
            names = [key for ref in await self.store.accounts(partition)
                     for key in (old.snapshot(ref), old.ledger(ref), old.ledger_ids(ref))]
            names += [old.checkpoint(partition), old.due(partition), old.folded(partition), old.quarantined(partition)]
            for start in range(0, len(names), 500):
                await self.redis.unlink(*names[start:start + 500])
