"""Stream entries to events: the payload, plus the rate card version a usage entry points to."""

from collections.abc import Sequence
from typing import Any

import msgspec

from domain.codec import decode_event
from domain.events import AnyEvent, UsageRecorded
from domain.fold import advance_logged
from domain.money import exact_arithmetic
from domain.pricing import PriceVersion
from domain.state import Account, LedgerWrite
from domain.usage_run import fold_usage_run
from store.ratecard import RateCards

force_setattr = msgspec.structs.force_setattr


def decode_entry(payload: bytes, digest: bytes | None, cards: RateCards) -> AnyEvent:
    """The event of one entry; a usage entry gets the price versions its digest names (from `cards`, which the
    reader loaded them into; MissingRateCard says which is missing and why)."""
    event = decode_event(payload)
    if digest is not None and isinstance(event, UsageRecorded):
        # The decoder's own new object, held by no one else yet: the prices go in place rather than into a copy.
        force_setattr(event, "prices", cards.prices(digest))
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
    rate cards are in `cards`. Consecutive usage entries fold in one step (domain/usage_run.py), exactly as one
    by one: a run stops before any entry at which the watch moves a wallet or anything raises, and that entry
    folds alone."""
    result = LogFold(account)
    run: list[tuple[str, UsageRecorded]] = []  # the waiting usage entries' positions and events
    first = 0  # where in `entries` the run starts
    digest: bytes | None = None  # the rate card asked for last and its prices: a log's usage entries mostly name one
    prices: tuple[PriceVersion, ...] = ()
    with exact_arithmetic():  # entered once for the whole log, not twice per event
        for index, entry in enumerate(entries):
            try:  # decode_entry, inlined: this loop is the replay's per-event cost
                event = decode_event(entry.payload)
                rates = entry.rates
                if rates is not None and isinstance(event, UsageRecorded):
                    if rates != digest:
                        digest, prices = rates, cards.prices(rates)
                    force_setattr(event, "prices", prices)
            except Exception as exc:  # any failure: the caller reports or quarantines this account
                if _fold_run(run, entries, first, result):
                    _failed(result, entry, exc)
                return result
            if isinstance(event, UsageRecorded):
                if not run:
                    first = index
                run.append((entry.position, event))
            elif not _fold_run(run, entries, first, result) or not _fold_one(entry, event, result):
                return result
        _fold_run(run, entries, first, result)
    return result


def _fold_run(run: list[tuple[str, UsageRecorded]], entries: Sequence[LogEntry], first: int, result: LogFold) -> bool:
    """Fold the waiting usage entries (`run`, from `entries[first]` on): in one step up to any that must fold
    alone, that one alone, and so on; False when one failed (`result.failed` is that entry)."""
    done = 0
    while done < len(run):
        result.account, folded = fold_usage_run(result.account, run[done:] if done else run)
        done += folded
        if done < len(run):
            if not _fold_one(entries[first + done], run[done][1], result):
                return False
            done += 1
    run.clear()
    return True


def _fold_one(entry: LogEntry, event: AnyEvent, result: LogFold) -> bool:
    try:
        result.account, written = advance_logged(result.account, entry.position, event)
    except Exception as exc:  # any failure: the caller reports or quarantines this account
        _failed(result, entry, exc)
        return False
    result.ledger.extend(written)
    return True


def _failed(result: LogFold, entry: LogEntry, exc: Exception) -> None:
    result.failed, result.reason = entry, f"{type(exc).__name__}: {exc}"[:2000]
