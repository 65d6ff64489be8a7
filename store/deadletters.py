"""Entries a projector cannot decode: the partition halts on them, and operators retry or drop them.

Dropping is recorded as an event on the partition's operations stream, raw bytes included, so nothing
is lost: the feed checkpoint moves past the entry, and if the customer stream holds the same undecodable
entry it is removed there too (its bytes stay in the operations record).
"""

import time
from typing import Any

import msgspec
from redis.asyncio import Redis

from domain.codec import decode_ref
from store.keys import Keys
from store.positions import is_after, text


class Halt(msgspec.Struct, frozen=True):
    partition: int
    position: str
    reason: str
    at_ms: int


class RawEntry(msgspec.Struct, frozen=True):
    position: str
    fields: dict[str, str]


class DeadLetters:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def halt(self, partition: int, position: str, reason: str) -> None:
        await self.redis.hset(self.keys.halted(partition),
                              mapping={"position": position, "reason": reason, "at": int(time.time() * 1000)})

    async def halted(self, partition: int) -> Halt | None:
        raw: Any = await self.redis.hgetall(self.keys.halted(partition))
        if not raw:
            return None
        return Halt(partition, text(raw[b"position"]), text(raw[b"reason"]), int(raw[b"at"]))

    async def list(self) -> list[Halt]:
        found = [await self.halted(p) for p in range(self.keys.partitions)]
        return [h for h in found if h is not None]

    async def show(self, partition: int) -> RawEntry | None:
        halt = await self.halted(partition)
        if halt is None:
            return None
        reply: Any = await self.redis.xrange(self.keys.feed(partition), min=halt.position, max=halt.position)
        if not reply:
            return RawEntry(halt.position, {})
        return RawEntry(halt.position, {text(k): repr(v) for k, v in reply[0][1].items()})

    async def retry(self, partition: int) -> bool:
        """Clear the halt: the projector tries the entry again (after a fix was deployed)."""
        return bool(await self.redis.delete(self.keys.halted(partition)))

    async def drop(self, partition: int, operator: str) -> str | None:
        """Skip the halted entry: record it (raw) on the operations stream, move the checkpoint past it."""
        halt = await self.halted(partition)
        if halt is None:
            return None
        reply: Any = await self.redis.xrange(self.keys.feed(partition), min=halt.position, max=halt.position)
        fields: dict[bytes, bytes] = reply[0][1] if reply else {}
        record: dict[Any, Any] = {"action": "entry_dropped", "position": halt.position, "reason": halt.reason,
                                  "operator": operator, "at": int(time.time() * 1000)}
        record.update({f"raw.{text(k)}": v for k, v in fields.items()})
        same_in_log = await self._same_entry_in_log(fields)
        checkpoint: Any = await self.redis.get(self.keys.checkpoint(partition))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.keys.operations(partition), record)
            if checkpoint is None or is_after(halt.position, text(checkpoint)):
                pipe.set(self.keys.checkpoint(partition), halt.position)
                pipe.incr(self.keys.folded(partition))
            if same_in_log is not None:
                pipe.xdel(*same_in_log)
            pipe.delete(self.keys.halted(partition))
            await pipe.execute()
        return halt.position

    async def _same_entry_in_log(self, fields: dict[bytes, bytes]) -> tuple[str, str] | None:
        """(customer stream, position) when that stream holds the very same bytes as the dropped feed entry."""
        if b"c" not in fields or b"l" not in fields or b"e" not in fields:
            return None
        try:
            log = self.keys.log(decode_ref(fields[b"c"]))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        position = text(fields[b"l"])
        reply: Any = await self.redis.xrange(log, min=position, max=position)
        if reply and reply[0][1].get(b"e") == fields[b"e"]:
            return log, position
        return None
