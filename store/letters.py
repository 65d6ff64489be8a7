"""The dead-letter record of a quarantined account: the entry it stopped on, why, its raw bytes and when."""

import time
from typing import Literal

import msgspec

from domain.identity import AccountRef

Kind = Literal["fold", "gap"]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """`kind` fold: the entry cannot be decoded or folded; gap: the customer-stream entry before it is missing
    from the feed. `feed_position` is '' when the entry was found outside the feed (by a replay)."""

    ref: AccountRef
    kind: Kind
    log_position: str
    feed_position: str
    reason: str
    raw: bytes
    rates: bytes | None = None
    at_ms: int

    def encode(self) -> bytes:
        return _encoder.encode(self)

    @property
    def summary(self) -> str:
        """What the snapshot's `q` field says."""
        return f"{self.kind} at {self.log_position}: {self.reason}"[:500]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(DeadLetter)


def decode_dead_letter(data: bytes) -> DeadLetter:
    return _decoder.decode(data)


def now_ms() -> int:
    return int(time.time() * 1000)
