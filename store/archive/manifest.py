"""The archive's manifest in Redis, per partition: committed segments, each account's archived span, the segments
whose streams are not trimmed yet, and the archive lease (fenced like the projector's)."""

from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from domain.codec import decode_ref, encode_ref
from domain.identity import AccountRef
from store.keys import Keys
from store.lease import give_back, take
from store.positions import text
from store.scripts import Script, script

COMMITTED, LEASE_LOST, MOVED = 1, -1, -2


class SegmentRecord(msgspec.Struct, frozen=True):
    """A committed segment: where it is, what it holds (rows, accounts, position range in ms) and its digest."""

    number: int
    url: str
    rows: int
    accounts: int
    sha256: str
    first_ms: int
    last_ms: int
    written_ms: int


class Span(msgspec.Struct, frozen=True):
    """An account's archived positions: the first and the last (every entry from the first to `through`)."""

    first: str
    through: str

    def encode(self) -> str:
        return f"{self.first}|{self.through}"


_record_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(SegmentRecord)


def decode_span(value: Any) -> Span | None:
    if not value:
        return None
    first, _, through = text(value).partition("|")
    return Span(first, through)


def _script(redis: Redis, name: str) -> Script:
    return script(redis, name)


class Manifest:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.lease_script = _script(redis, "lease")
        self.release_script = _script(redis, "release")
        self.commit_script = _script(redis, "archive_commit")
        self.trim_script = _script(redis, "archive_trim")

    async def take_lease(self, partition: int, holder: str, ttl_ms: int, held: str | None) -> str | None:
        """Take or renew the partition's archive lease (store/lease.py); None when another archiver has it."""
        return await take(self.lease_script, self.keys.archive_lease(partition), self.keys.archive_fence(partition),
                          holder, ttl_ms, held)

    async def release_lease(self, partition: int, held: str) -> None:
        await give_back(self.release_script, self.keys.archive_lease(partition), held)

    async def segments(self, partition: int) -> list[SegmentRecord]:
        raw: Any = await self.redis.hvals(self.keys.archive_segments(partition))
        return sorted((_record_decoder.decode(v) for v in raw), key=lambda s: s.number)

    async def pending(self, partition: int) -> list[int]:
        raw: Any = await self.redis.smembers(self.keys.archive_pending(partition))
        return sorted(int(v) for v in raw)

    async def spans(self, partition: int, refs: Sequence[AccountRef]) -> list[Span | None]:
        if not refs:
            return []
        raw: Any = await self.redis.hmget(self.keys.archive_through(partition), [encode_ref(r) for r in refs])
        return [decode_span(v) for v in raw]

    async def span(self, ref: AccountRef) -> Span | None:
        return (await self.spans(self.keys.partition_of(ref), [ref]))[0]

    async def all_spans(self, partition: int) -> dict[AccountRef, Span]:
        raw: Any = await self.redis.hgetall(self.keys.archive_through(partition))
        return {decode_ref(k): span for k, v in raw.items() if (span := decode_span(v)) is not None}

    async def commit(self, partition: int, lease: str, record: SegmentRecord,
                     changes: Sequence[tuple[AccountRef, Span | None, Span]]) -> int:
        args: list[Any] = [lease, record.number, _record_encoder.encode(record)]
        for ref, old, new in changes:
            args.extend((encode_ref(ref), old.encode() if old else "", new.encode()))
        return int(await self.commit_script(
            keys=[self.keys.archive_lease(partition), self.keys.archive_segments(partition),
                  self.keys.archive_through(partition), self.keys.archive_pending(partition)], args=args))

    async def trim(self, partition: int, lease: str, refs: Sequence[AccountRef], done: int | None) -> int:
        """Trim these accounts' streams up to their archived span; `done` marks a segment's trimming complete."""
        keys = [self.keys.archive_lease(partition), self.keys.archive_through(partition),
                self.keys.archive_pending(partition), *(self.keys.log(r) for r in refs)]
        args = [lease, "" if done is None else done, *(encode_ref(r) for r in refs)]
        return int(await self.trim_script(keys=keys, args=args))
