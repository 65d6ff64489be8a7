"""Stream entries to events: the payload, plus the rate card version a usage entry points to."""

from collections.abc import Sequence
from typing import Any

import msgspec

from domain.codec import decode_event
from domain.events import AnyEvent, UsageRecorded
from domain.fold import advance_logged
from domain.money import exact_arithmetic
from domain.state import Account, LedgerWrite
from store.ratecard import RateCards


def decode_entry(payload: bytes, digest: bytes | None, cards: RateCards) -> AnyEvent:
    """The event of one entry; a usage entry gets the price versions its digest names (from `cards`, which the
    reader loaded them into; MissingRateCard says which is missing and why)."""
    event = decode_event(payload)
    if digest is not None and isinstance(event, UsageRecorded):
        event = msgspec.structs.replace(event, prices=cards.prices(digest))
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


def fold_log(account: Account, entries: Sequence[LogEntry], cards: RateCards) -> LogFold:
    """Fold entries in order up to the first that cannot be decoded or folded (it is returned, with why); their
    rate cards are in `cards`."""
    ledger: list[LedgerWrite] = []
    with exact_arithmetic():  # entered once for the whole log, not twice per event
        for entry in entries:
            try:
                event = decode_entry(entry.payload, entry.rates, cards)
                account, written = advance_logged(account, entry.position, event)
            except Exception as exc:  # any failure: the caller reports or quarantines this account
                return LogFold(account, entry, f"{type(exc).__name__}: {exc}"[:2000], ledger)
            ledger.extend(written)
    return LogFold(account, ledger=ledger)
