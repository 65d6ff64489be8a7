"""The projector's side of the store: leases with fencing, the feed, snapshots and the atomic commit."""

import functools
from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from domain.codec import decode_ref, encode_ref
from domain.identity import AccountRef
from domain.state import Account, LedgerWrite
from store.connect import node_of, unparsed_on_node_of
from store.keys import Keys
from store.lease import Lease, give_back, take
from store.ledger import DEFAULT_KEEP, LedgerTrim, Removal, ledger_args, removals
from store.letters import DeadLetter
from store.positions import ORIGIN, is_after, text
from store.ratecard import RateCards
from store.scripts import Scripts

COMMITTED, LEASE_LOST, CHECKPOINT_MOVED, SNAPSHOT_MOVED = 1, -1, -2, -3


class FeedEntry(msgspec.Struct, frozen=True):
    """One feed entry; `broken` says why an entry whose fields cannot even be read is unusable. `previous` is the
    customer-stream entry before it (None in entries written before feeds carried it)."""

    position: str
    ref: AccountRef
    log_position: str
    payload: bytes
    rates: bytes | None = None
    broken: str | None = None
    previous: str | None = None


class NoticeWrite(msgspec.Struct, frozen=True):
    """A notice (domain/notices.py, encoded) to append to the notices stream once: `key` identifies it across
    replays and rebuilds; `at_ms` is when its fact happened."""

    key: str
    payload: bytes
    at_ms: int


class Snapshot(msgspec.Struct, frozen=True):
    """`quarantined` says why the account is quarantined (None when it is not); `decoded` is `state` already
    decoded (a projector's cache of the snapshots it wrote, projector/snapshots.py), None when the fold must decode
    it."""

    position: str
    state: bytes | None
    quarantined: str | None = None
    decoded: Account | None = None


class SnapshotWrite(msgspec.Struct, frozen=True):
    """A folded account, when the clock next has work for it (epoch ms, or None), the ledger changes its fold
    made that Redis keeps (written with it) and the seqs its wallets' windows moved past (store/ledger.py). `base`
    is the stored state the fold started from (b"": none): the commit is refused when the stored one is another.
    `account` is `state` decoded (what a cache of the snapshots keeps)."""

    ref: AccountRef
    position: str
    state: bytes
    due_ms: int | None = None
    ledger: tuple[LedgerWrite, ...] = ()
    trims: tuple[LedgerTrim, ...] = ()
    base: bytes = b""
    account: Account | None = None


class QuarantineWrite(msgspec.Struct, frozen=True):
    """An account quarantined by a batch: its dead letter, and its last good fold (None: keep the snapshot); `base`
    as in SnapshotWrite."""

    letter: DeadLetter
    position: str | None = None
    state: bytes | None = None
    ledger: tuple[LedgerWrite, ...] = ()
    trims: tuple[LedgerTrim, ...] = ()
    base: bytes = b""


class Projection:
    def __init__(self, redis: Redis, keys: Keys, ledger_keep: int = DEFAULT_KEEP) -> None:
        """`ledger_keep`: the ledger entries Redis keeps per wallet (TALLY_LEDGER_KEEP, store/ledger.py)."""
        self.redis = redis
        self.keys = keys
        self.scripts = Scripts(redis)
        self.ledger_keep = ledger_keep
        self.rate_cards = RateCards(redis, keys)  # what the folds of this projection price usage with

    def lease(self, partition: int, holder: str, ttl_ms: int) -> Lease:
        """The partition's fenced lease (store/lease.py), not taken yet."""
        return Lease(self.scripts.lease, self.scripts.release, self.keys.lease(partition), self.keys.fence(partition),
                     holder, ttl_ms)

    async def take_lease(self, partition: int, holder: str, ttl_ms: int, held: str | None) -> str | None:
        """Take or renew the partition's lease; None when another holder has it."""
        return await take(self.scripts.lease, self.keys.lease(partition), self.keys.fence(partition), holder, ttl_ms,
                          held)

    async def release_lease(self, partition: int, held: str) -> None:
        await give_back(self.scripts.release, self.keys.lease(partition), held)

    async def lease_holder(self, partition: int) -> str | None:
        value: Any = await self.redis.get(self.keys.lease(partition))
        return text(value) if value else None

    async def checkpoint(self, partition: int) -> str:
        value: Any = await self.redis.get(self.keys.checkpoint(partition))
        return text(value) if value else ORIGIN

    async def read_feed(self, partition: int, after: str, count: int, block_ms: int | None) -> list[FeedEntry]:
        feed = self.keys.feed(partition)
        command: list[Any] = ["XREAD", "COUNT", count, *(("BLOCK", block_ms) if block_ms is not None else ()),
                              "STREAMS", feed, after]
        reply: Any = await unparsed_on_node_of(self.redis, feed, *command)
        if not reply:
            return []
        # as sent: {feed: entries} (RESP3) or [[feed, entries]] (RESP2), each entry's fields a flat list; parsed by
        # redis-py (a cluster client): [[feed, entries]], each entry's fields a dict
        _, entries = next(iter(reply.items())) if isinstance(reply, dict) else reply[0]
        return [_feed_entry(text(entry_id), fields) for entry_id, fields in entries]

    async def load_snapshots(self, refs: Sequence[AccountRef]) -> list[Snapshot]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.hmget(self.keys.snapshot(ref), ["p", "s", "q"])
            replies = await pipe.execute()
        return [Snapshot(text(p) if p else ORIGIN, s, text(q) if q else None) for p, s, q in replies]

    async def commit(
        self, partition: int, lease: str, expected: str, checkpoint: str,
        snapshots: Sequence[SnapshotWrite], folded_at: str, entries: int, notices: Sequence[NoticeWrite] = (),
        quarantines: Sequence[QuarantineWrite] = (),
    ) -> int:
        """Write the snapshots and quarantines and move the checkpoint in one step; see COMMITTED / LEASE_LOST /
        CHECKPOINT_MOVED / SNAPSHOT_MOVED (a stored snapshot is not the one a fold started from: nothing written)."""
        keys = [self.keys.lease(partition), self.keys.checkpoint(partition), self.keys.due(partition),
                self.keys.folded(partition), self.keys.notices(partition), self.keys.notices_emitted(partition),
                self.keys.quarantined(partition)]
        args: list[Any] = [lease, expected, checkpoint, folded_at, entries, len(notices), len(quarantines)]
        for notice in notices:
            args.extend((notice.key, notice.payload, notice.at_ms))
        removed = await self._removals(snapshots, quarantines)
        for write in snapshots:
            keys.extend(self._account_keys(write.ref))
            args.extend((write.position, memoryview(write.state), encode_ref(write.ref),
                         "" if write.due_ms is None else write.due_ms, memoryview(write.base)))
            args.extend(ledger_args(write.ledger, removed.pop(0)))
        for quarantine in quarantines:
            letter = quarantine.letter
            keys.extend(self._account_keys(letter.ref))
            args.extend((quarantine.position or "", quarantine.state or b"", encode_ref(letter.ref), letter.encode(),
                         letter.summary, memoryview(quarantine.base)))
            args.extend(ledger_args(quarantine.ledger, removed.pop(0)))
        return int(await self.scripts.commit(keys=keys, args=args))

    async def _removals(self, snapshots: Sequence[SnapshotWrite],
                        quarantines: Sequence[QuarantineWrite]) -> list[list[Removal]]:
        """The stored entries each written account's trims take out of Redis, in the order written."""
        trims = [(w.ref, w.trims) for w in snapshots] + [(q.letter.ref, q.trims) for q in quarantines]
        return await removals(self.redis, self.keys, trims)

    def _account_keys(self, ref: AccountRef) -> tuple[str, str, str]:
        return self.keys.snapshot(ref), self.keys.ledger(ref), self.keys.ledger_ids(ref)

    async def quarantined_count(self, partition: int) -> int:
        return int(await self.redis.hlen(self.keys.quarantined(partition)))

    async def load_rate_cards(self, partition: int, entries: Sequence[FeedEntry]) -> None:
        """Load into `rate_cards` what the entries name and it has not decoded yet."""
        await self.rate_cards.load(partition, [e.rates for e in entries])

    async def due_accounts(self, partition: int, now_ms: int, limit: int) -> list[AccountRef]:
        members: Any = await self.redis.zrangebyscore(self.keys.due(partition), "-inf", now_ms, start=0, num=limit)
        return [decode_ref(m) for m in members]

    async def postpone(self, partition: int, ref: AccountRef, due_ms: int) -> None:
        """Look at an account again later (the fold's own schedule overwrites this when it commits)."""
        await self.redis.zadd(self.keys.due(partition), {encode_ref(ref): due_ms}, xx=True)

    async def unschedule(self, partition: int, ref: AccountRef) -> None:
        await self.redis.zrem(self.keys.due(partition), encode_ref(ref))

    async def feed_head(self, partition: int) -> str:
        reply: Any = await self.redis.xrevrange(self.keys.feed(partition), count=1)
        return text(reply[0][0]) if reply else ORIGIN

    def use_generation(self, generation: int) -> None:
        self.keys = msgspec.structs.replace(self.keys, generation=generation)

    async def trim_feed(self, partition: int, checkpoint: str) -> None:
        """Drop feed entries below the checkpoint and below any replay's floor (never by length)."""
        floor: Any = await self.redis.get(self.keys.retention_floor(partition))
        limit = checkpoint if floor is None or is_after(text(floor), checkpoint) else text(floor)
        await self.redis.xtrim(self.keys.feed(partition), minid=limit, approximate=True)

    async def lag(self, partition: int) -> "Lag":
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.checkpoint(partition))
            pipe.get(self.keys.folded(partition))
            pipe.get(self.keys.lease(partition))
            pipe.xinfo_stream(self.keys.feed(partition))
            replies: Any = await pipe.execute(raise_on_error=False)
        raw_checkpoint, folded, holder, info = replies
        checkpoint = text(raw_checkpoint) if raw_checkpoint else ORIGIN
        stream: dict[Any, Any] = info if isinstance(info, dict) else {}
        added = int(stream.get("entries-added") or stream.get(b"entries-added") or 0)
        head = stream.get("last-generated-id") or stream.get(b"last-generated-id")
        oldest: Any = await self.redis.xrange(self.keys.feed(partition), min=f"({checkpoint}", max="+", count=1)
        return Lag(
            partition=partition, checkpoint=checkpoint, head=text(head) if head else ORIGIN,
            behind=max(0, added - int(folded or 0)), oldest_unfolded_ms=int(text(oldest[0][0]).split("-")[0])
            if oldest else None, holder=text(holder) if holder else None,
            node=node_of(self.redis, self.keys.feed(partition)),
        )


class Lag(msgspec.Struct, frozen=True):
    partition: int
    checkpoint: str
    head: str
    behind: int
    oldest_unfolded_ms: int | None
    holder: str | None
    node: str | None = None
    """`host:port` of the cluster primary holding the partition (None on a single server)."""


NOBODY = AccountRef("", "", "")


@functools.lru_cache(maxsize=65536)
def _account_of(data: bytes) -> AccountRef:
    """An account's encoded ref as feed entries carry it (the same bytes for every entry of the account: cached)."""
    return decode_ref(data)


FIELDS = (b"c", b"l", b"e", b"r", b"pl")
FIELDS_WITHOUT_RATES = (b"c", b"l", b"e", b"pl")
"""The fields the append scripts write into a feed entry, in their order (store/lua/append*.lua)."""


def _feed_entry(position: str, fields: list[bytes] | dict[bytes, bytes]) -> FeedEntry:
    """An entry naming no readable account, position or previous position is `broken` (it halts the partition,
    where raising would only fail every turn of its worker again); one that names them but carries no payload
    reaches the fold, which quarantines that account. `fields` as the server sent them (a flat list of names and
    values) or as redis-py parses them (a dict)."""
    if isinstance(fields, list):
        if tuple(fields[::2]) in (FIELDS, FIELDS_WITHOUT_RATES):  # what the append scripts write: read in place
            try:
                ref, log_position, previous = _account_of(fields[1]), fields[3].decode(), fields[-1].decode()
            except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
                pass  # said below, as for any other entry
            else:
                rates = fields[7] if len(fields) == 2 * len(FIELDS) else None
                return FeedEntry(position, ref, log_position, fields[5], rates, None, previous)
        fields = dict(zip(fields[::2], fields[1::2], strict=False))
    try:
        ref, log_position = _account_of(fields[b"c"]), fields[b"l"].decode()
        before = fields.get(b"pl")
        previous_position = None if before is None else before.decode()
    except (KeyError, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        return FeedEntry(position, NOBODY, "0-0", b"", broken=f"unreadable feed entry fields: {exc!r}")
    return FeedEntry(position, ref, log_position, fields.get(b"e", b""), fields.get(b"r"), None, previous_position)
