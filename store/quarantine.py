"""Quarantined accounts: one account whose entry cannot be folded is set aside while its partition goes on.

An account is quarantined when an entry of its stream cannot be decoded or folded, or when the fold finds a gap
(the entry before it in the customer stream was neither applied nor in the batch). Its snapshot keeps the last
good position and carries `q` (why); the partition's quarantine hash holds the dead-letter record (the entry's
positions, the reason, its raw bytes, when). The projector skips the account's later entries (they stay in the
customer stream). An operator retries it (refold from the snapshot and the customer stream, after a fix) or drops
the entry (recorded with its raw bytes on the operations stream, removed from the customer stream), then refolds.
"""

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from domain.codec import encode_ref
from domain.identity import AccountRef
from domain.state import LedgerWrite
from store.keys import Keys
from store.ledger import Removal, ledger_args
from store.letters import DeadLetter, decode_dead_letter, now_ms
from store.positions import ORIGIN
from store.projection import NoticeWrite
from store.scripts import Scripts

RELEASED, NOT_QUARANTINED, MOVED = 1, 0, -1


class Quarantines:
    """The operator's side: list, read, release and update quarantined accounts of the live generation."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.scripts = Scripts(redis)

    async def every(self) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for partition in range(self.keys.partitions):
            raw: Any = await self.redis.hvals(self.keys.quarantined(partition))
            found.extend(sorted((decode_dead_letter(r) for r in raw), key=lambda d: d.ref))
        return found

    async def get(self, ref: AccountRef) -> DeadLetter | None:
        raw: Any = await self.redis.hget(self.keys.quarantined(self.keys.partition_of(ref)), encode_ref(ref))
        return decode_dead_letter(raw) if raw else None

    async def record(self, letter: DeadLetter) -> None:
        """Quarantine (again) with this record: the snapshot's marker and the partition's hash, together."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.snapshot(letter.ref), "q", letter.summary)
            pipe.hset(self.keys.quarantined(self.keys.partition_of(letter.ref)), encode_ref(letter.ref),
                      letter.encode())
            pipe.zrem(self.keys.due(self.keys.partition_of(letter.ref)), encode_ref(letter.ref))
            await pipe.execute()

    async def release(
        self, ref: AccountRef, last_log: str, snapshot_at: str, position: str, state: bytes, folded_at: str,
        due_ms: int | None, notices: Sequence[NoticeWrite], ledger: Sequence[LedgerWrite] = (),
        removed: Sequence[Removal] = (),
    ) -> int:
        """Write the refolded snapshot and clear the quarantine in one step, only if neither the customer stream
        (still ending at `last_log`) nor the snapshot (still at `snapshot_at`) moved: RELEASED, NOT_QUARANTINED
        or MOVED (read again and retry)."""
        partition = self.keys.partition_of(ref)
        keys = [self.keys.log(ref), self.keys.snapshot(ref), self.keys.quarantined(partition),
                self.keys.due(partition), self.keys.notices(partition), self.keys.notices_emitted(partition),
                self.keys.ledger(ref), self.keys.ledger_ids(ref)]
        args: list[Any] = [last_log or ORIGIN, snapshot_at, position, state, folded_at, encode_ref(ref),
                           "" if due_ms is None else due_ms, len(notices)]
        for notice in notices:
            args.extend((notice.key, notice.payload, notice.at_ms))
        args.extend(ledger_args(ledger, removed))
        return int(await self.scripts.unquarantine(keys=keys, args=args))

    async def drop_entry(self, letter: DeadLetter, operator: str) -> bool:
        """Record the entry (raw) and the operator on the operations stream, and remove it from the customer
        stream (only if the very same bytes are there) and from the feed; False if the record changed meanwhile."""
        partition = self.keys.partition_of(letter.ref)
        log, quarantined = self.keys.log(letter.ref), self.keys.quarantined(partition)
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(log, quarantined)
            current: Any = await pipe.hget(quarantined, encode_ref(letter.ref))
            if not current or decode_dead_letter(current) != letter:
                return False
            there: Any = await pipe.xrange(log, min=letter.log_position, max=letter.log_position)
            same = bool(there) and there[0][1].get(b"e") == letter.raw
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.xadd(self.keys.operations(partition), _drop_record(letter, operator, same))
            if same:
                pipe.xdel(log, letter.log_position)
            if letter.feed_position:
                pipe.xdel(self.keys.feed(partition), letter.feed_position)
            await pipe.execute()
        return True


def _drop_record(letter: DeadLetter, operator: str, in_log: bool) -> dict[Any, Any]:
    record: dict[Any, Any] = {
        "action": "account_entry_dropped", "customer": encode_ref(letter.ref), "position": letter.log_position,
        "feed_position": letter.feed_position, "reason": letter.reason, "operator": operator, "at": now_ms(),
        "removed_from_log": int(in_log), "raw.e": letter.raw,
    }
    if letter.rates is not None:
        record["raw.r"] = letter.rates
    return record
