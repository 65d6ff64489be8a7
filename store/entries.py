"""Stream entries to events: the payload, plus the rate card version a usage entry points to."""

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from domain.codec import decode_event, decode_prices
from domain.events import AnyEvent, UsageRecorded
from domain.fold import advance_logged
from domain.money import exact_arithmetic
from domain.pricing import PriceVersion
from domain.state import Account, LedgerWrite

# Rate card blobs are content-addressed (keyed by their digest), so a decoded one never goes stale.
_prices_by_digest: dict[bytes, tuple[PriceVersion, ...]] = {}


def known_prices(digest: bytes) -> bool:
    return digest in _prices_by_digest


def remember_blobs(blobs: Mapping[bytes, bytes | None]) -> None:
    for digest, blob in blobs.items():
        if blob is not None and digest not in _prices_by_digest:
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):  # then missing: see decode_entry
                _prices_by_digest[digest] = decode_prices(blob)


def decode_entry(payload: bytes, digest: bytes | None) -> AnyEvent:
    """The event of one entry; a usage entry gets the price versions its digest names."""
    event = decode_event(payload)
    if digest is not None and isinstance(event, UsageRecorded):
        prices = _prices_by_digest.get(digest)
        if prices is None:
            raise LookupError(f"rate card {digest!r} is missing")
        event = msgspec.structs.replace(event, prices=prices)
    return event


def pairs(flat: list[Any]) -> dict[bytes, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class LogEntry(msgspec.Struct, frozen=True):
    """One customer-stream entry as stored: its position, event bytes and rate card digest."""

    position: str
    payload: bytes
    rates: bytes | None = None


class LogFold(msgspec.Struct):
    """How far a fold of stream entries got: `failed` is the entry that could not be decoded or folded;
    `ledger` the ledger changes the fold made up to there, in order."""

    account: Account
    failed: LogEntry | None = None
    reason: str = ""
    ledger: list[LedgerWrite] = []


def fold_log(account: Account, entries: Sequence[LogEntry]) -> LogFold:
    """Fold entries in order up to the first that cannot be decoded or folded (it is returned, with why)."""
    ledger: list[LedgerWrite] = []
    with exact_arithmetic():  # entered once for the whole log, not twice per event
        for entry in entries:
            try:
                account, written = advance_logged(account, entry.position, decode_entry(entry.payload, entry.rates))
            except Exception as exc:  # any failure: the caller reports or quarantines this account
                return LogFold(account, entry, f"{type(exc).__name__}: {exc}"[:2000], ledger)
            ledger.extend(written)
    return LogFold(account, ledger=ledger)
