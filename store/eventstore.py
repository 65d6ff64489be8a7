"""Append events to customer streams and read accounts back: the snapshot plus the tail it has not folded."""

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from domain.codec import decode_account, decode_ref, encode_event, encode_ref
from domain.events import AnyEvent, UsageRecorded
from domain.fold import fold_logged
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT, Account, LedgerWrite
from store.dedup import bucket_expiry, bucket_keys, digest_args, digest_v1, previous_layouts_until, seen_bare, week_of
from store.entries import LogEntry, decode_entry, pairs
from store.keys import Keys
from store.log_read import LogReader
from store.meta import dedup_layout_since
from store.positions import ORIGIN, text
from store.ratecard import RateCards
from store.read_memo import ReadMemo
from store.scripts import Replicated, Scripts
from store.usage_append import append_usage


class Dedup(msgspec.Struct, frozen=True):
    """Refuse a second append with the same `key` in `scope` (of `wallet_id`, if given) for the dedup window;
    `value` is kept with it. A bare id (no value, no wallet) costs a digest in a week bucket (store/dedup.py)."""

    scope: str
    key: str
    value: str = ""
    wallet_id: str | None = None

    @property
    def bare(self) -> bool:
        return not self.value and self.wallet_id is None


class Appended(msgspec.Struct, frozen=True):
    status: Literal["appended", "duplicate", "conflict"]
    positions: tuple[str, ...] = ()
    seen: str = ""


class AccountRead(msgspec.Struct, frozen=True, weakref=True):
    """An account as read: `snapshot_position`/`folded_at` say how fresh the snapshot part was. A quarantined
    account (`quarantined` says why) is read from its snapshot alone: its tail holds an entry that cannot fold.
    `ledger` holds the ledger changes folding the tail made (the stored ledger holds those of the snapshot).
    Weakly referable: api/balance_memo.py keeps a response with its read without keeping the read alive."""

    account: Account
    snapshot_position: str
    folded_at: str
    tail: int
    quarantined: str | None = None
    ledger: tuple[LedgerWrite, ...] = ()


def account_read(reply: Sequence[Any], cards: RateCards) -> AccountRead:
    """What a read script answered ({position, state, folded_at, tail, blobs, quarantined, ...}), folded: the
    snapshot and its tail. A tail that cannot be folded (an entry the projector is about to quarantine) leaves the
    snapshot alone, marked."""
    position, state, folded_at, tail, blobs, quarantined = reply[:6]
    cards.remember(pairs(blobs))
    snapshot = decode_account(state) if state else EMPTY_ACCOUNT
    read = AccountRead(account=snapshot, snapshot_position=text(position),
                       folded_at=text(folded_at) if folded_at else "", tail=0,
                       quarantined=text(quarantined) if quarantined else None)
    if not tail:
        return read
    try:
        entries = decode_entries(tail, cards)
        account, written = fold_logged(snapshot, entries)
    except Exception as exc:  # any fold failure: the projector quarantines the account
        return msgspec.structs.replace(read, quarantined=f"its stream cannot be folded: {type(exc).__name__}")
    return msgspec.structs.replace(read, account=account, tail=len(entries), ledger=tuple(written))


def decode_entries(raw: Sequence[Any], cards: RateCards) -> list[tuple[str, AnyEvent]]:
    """Stream entries as returned by XRANGE inside Lua ([[id, [field, value, ...]], ...])."""
    entries = []
    for entry_id, fields in raw:
        values = pairs(fields)
        entries.append((text(entry_id), decode_entry(values[b"e"], values.get(b"r"), cards)))
    return entries


class EventStore:
    def __init__(self, redis: Redis, keys: Keys, dedup_ttl_seconds: int,
                 clock: Callable[[], float] = time.time, replicated: Replicated | None = None) -> None:
        """`clock` (unix seconds) picks the week buckets of bare ids; tests move it instead of waiting. With
        `replicated`, an append returns only once WAIT confirmed it (else StoreUnavailable: a 503)."""
        self.redis = redis
        self.replicated = replicated
        self.keys = keys
        self.dedup_ttl_seconds = dedup_ttl_seconds
        self.clock = clock
        self.previous_dedup_until = math.inf  # until then bare ids are looked up in the previous layouts too
        self.scripts = Scripts(redis)
        self.rate_cards = RateCards(redis, keys)  # what this store's reads decode usage entries with
        self.read_memo: ReadMemo[AccountRead] = ReadMemo()
        from store.archive.reader import ArchiveReader  # the archive reader imports this module

        self.archive = ArchiveReader(redis, keys)
        self.log_reader = LogReader(redis, keys, self.archive, self.rate_cards)

    async def follow_dedup_layout(self) -> None:
        """Look bare ids up in the previous dedup layouts only while this store may hold them (store/dedup.py);
        until this is called, always."""
        since = await dedup_layout_since(self.redis, self.keys, self.clock())
        self.previous_dedup_until = previous_layouts_until(since, self.dedup_ttl_seconds)

    def _append_call(
        self, ref: AccountRef, events: Sequence[AnyEvent], dedup: Dedup | None, expect: str | None
    ) -> tuple[list[str], list[Any]]:
        partition = self.keys.partition_of(ref)
        keys = [self.keys.log(ref), self.keys.feed(partition), self.keys.accounts(partition),
                self.keys.rate_pointers(partition, ref.tenant_id, ref.environment_id)]
        dedup_keys, ttl, value = self._dedup_call(ref, dedup)
        keys.extend(dedup_keys)
        usage = [e.event_name for e in events if isinstance(e, UsageRecorded)]
        if len(set(usage)) > 1:
            raise ValueError("one append carries usage of one event name at most")
        args: list[Any] = [encode_ref(ref), ttl, value, expect or "", usage[0] if usage else ""]
        args.extend(encode_event(event) for event in events)
        return keys, args

    def _dedup_call(self, ref: AccountRef, dedup: Dedup | None) -> tuple[list[str], int, str | bytes]:
        """KEYS 5.. and ARGV 2-3 of append.lua: an idempotency key's marker, its TTL and value; or for a bare id,
        its marker in the older layout, its week buckets (this layout's, then the previous one's), when this week's
        bucket expires and the id's digests; once the store cannot hold the previous layouts, this week's bucket in
        place of the marker, this layout's buckets and the 12-byte digest only."""
        if dedup is None:
            return [], self.dedup_ttl_seconds, ""
        if not dedup.bare:
            return [self.keys.dedup(ref, dedup.scope, dedup.key, dedup.wallet_id)], self.dedup_ttl_seconds, dedup.value
        now, window, name = self.clock(), self.dedup_ttl_seconds, digest_v1(dedup.scope, dedup.key)
        previous = now < self.previous_dedup_until
        buckets = bucket_keys(self.keys, ref, name, now, window, previous)
        first = [self.keys.dedup(ref, dedup.scope, dedup.key)] if previous else buckets[:1]
        return first + buckets, bucket_expiry(week_of(now), window), digest_args(name, previous)

    async def append(
        self, ref: AccountRef, events: Sequence[AnyEvent], dedup: Dedup | None = None, expect: str | None = None
    ) -> Appended:
        """Append `events` atomically; with `expect`, only if the customer stream still ends at that position."""
        keys, args = self._append_call(ref, events, dedup, expect)
        return _appended(await self.scripts.append(keys=keys, args=args, wait=self.replicated))

    async def append_each(self, items: Sequence[tuple[AccountRef, AnyEvent, Dedup | None]]) -> list[Appended]:
        """Append many single events in one round trip (usage with bare ids a partition at a time:
        store/usage_append.py; else one pipeline); each is atomic and deduplicated alone, in the order given."""
        usage = await append_usage(self, items)
        if usage:
            return [Appended("appended", (usage[i],)) if usage[i] else Appended("duplicate") for i in range(len(items))]
        replies = await self.scripts.append.run_each([self._append_call(ref, [event], dedup, None)
                                                     for ref, event, dedup in items], self.replicated)
        return [_appended(reply) for reply in replies]

    async def seen(self, ref: AccountRef, dedup: Dedup) -> str | None:
        """The value kept with a dedup key still in its window (what the first append stored; '' for a bare id), or
        None."""
        if dedup.bare:
            now = self.clock()
            return await seen_bare(self.redis, self.keys, ref, dedup.scope, dedup.key, now,
                                   self.dedup_ttl_seconds, now < self.previous_dedup_until)
        value: Any = await self.redis.get(self.keys.dedup(ref, dedup.scope, dedup.key, dedup.wallet_id))
        return None if value is None else text(value)

    async def read_account(self, ref: AccountRef, cached: bool = False) -> AccountRead:
        """The snapshot and (unless cached) the unfolded tail, in one round trip, folded together. A tail that
        cannot be folded (an entry the projector is about to quarantine) leaves the snapshot alone, marked."""
        partition = self.keys.partition_of(ref)
        reply = await self.scripts.read(
            keys=[self.keys.snapshot(ref), self.keys.log(ref), self.keys.rate_blobs(partition)],
            args=["cached" if cached else "exact"],
        )
        return self.read_memo.read(ref, cached, reply, self._account_read)

    def _account_read(self, reply: Sequence[Any]) -> AccountRead:
        return account_read(reply, self.rate_cards)

    async def read_log(self, ref: AccountRef, after: str = ORIGIN) -> list[tuple[str, AnyEvent]]:
        """The customer's whole stream after `after`, decoded (raises on an entry that cannot be decoded)."""
        return [(e.position, decode_entry(e.payload, e.rates, self.rate_cards))
                for e in await self.read_raw_log(ref, after)]

    async def read_raw_log(self, ref: AccountRef, after: str = ORIGIN) -> list[LogEntry]:
        """The customer's whole log after `after` as stored: what only the archive still holds, then the stream
        (rate cards loaded; store/log_read.py)."""
        return await self.log_reader.log(ref, after)

    async def read_raw_logs(self, refs: Sequence[AccountRef]) -> list[list[LogEntry]]:
        """`read_raw_log(ref)` of every account of `refs` (one partition), the first page of each in one round
        trip (store/log_read.py)."""
        return await self.log_reader.logs(refs)

    async def last_position(self, ref: AccountRef) -> str:
        """Where the customer stream ends now (ORIGIN when nothing was ever appended): a stream the archive
        emptied still knows its last id."""
        last: Any = await self.redis.xrevrange(self.keys.log(ref), count=1)
        if last:
            return text(last[0][0])
        try:
            info: Any = await self.redis.xinfo_stream(self.keys.log(ref))
        except ResponseError:  # no such stream
            return ORIGIN
        return text(info.get("last-generated-id") or info.get(b"last-generated-id") or ORIGIN)

    def use_generation(self, generation: int) -> None:
        """Read snapshots of another projection generation from now on."""
        self.keys = msgspec.structs.replace(self.keys, generation=generation)

    async def accounts(self, partition: int) -> list[AccountRef]:
        """Every account that has at least one event in the partition."""
        members: Any = await self.redis.smembers(self.keys.accounts(partition))
        return sorted(decode_ref(m) for m in members)

    async def index_wallet(self, wallet_id: str, ref: AccountRef) -> None:
        await self.redis.set(self.keys.wallet_index(wallet_id), encode_ref(ref))

    async def find_wallet(self, wallet_id: str) -> AccountRef | None:
        data: Any = await self.redis.get(self.keys.wallet_index(wallet_id))
        return decode_ref(data) if data else None


def _appended(reply: Sequence[Any]) -> Appended:
    code, payload = int(reply[0]), reply[1]
    if code == 1:
        return Appended("appended", tuple(text(p) for p in payload))
    if code == 0:
        return Appended("duplicate", seen=text(payload))
    return Appended("conflict", seen=text(payload))
