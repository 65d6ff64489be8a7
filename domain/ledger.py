"""Wallet ledger mechanics shared by the fold: debit lots in lot order and record the entry (yielded, not kept)."""

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Final

import msgspec

from domain.lots import available_credits, consume
from domain.money import ZERO
from domain.state import LedgerEntry, LedgerWrite, Lot, Wallet

replace: Final = msgspec.structs.replace
Written = tuple[LedgerWrite, ...]
"""The ledger changes one step of the fold made, in order."""


def with_entry(wallet: Wallet, lots: tuple[Lot, ...], entry: LedgerEntry) -> tuple[Wallet, Written]:
    """Record the entry at the wallet's next seq; lots with nothing left (spent or expired) are dropped so
    snapshots do not grow with them. A pending entry stays in the wallet until it is paid."""
    entry = replace(entry, seq=wallet.entries)
    live = tuple(lot for lot in lots if lot.remaining > ZERO or lot.pending)
    pending = (*wallet.pending_entries, entry) if entry.pending else wallet.pending_entries
    recorded = replace(wallet, lots=live, entries=wallet.entries + 1, pending_entries=pending,
                       balance_updated_at=entry.at)
    return recorded, (LedgerWrite(wallet.id, entry),)


def settle_pending(wallet: Wallet, transaction_id: str) -> tuple[Wallet, Written]:
    """The pending credit entry of `transaction_id` completed (a new version of it), and no longer kept."""
    entry = next((e for e in wallet.pending_entries if e.id == transaction_id), None)
    if entry is None:
        return wallet, ()
    rest = tuple(e for e in wallet.pending_entries if e.id != transaction_id)
    return replace(wallet, pending_entries=rest), (LedgerWrite(wallet.id, replace(entry, pending=False), new=False),)


def debit(
    wallet: Wallet, credits: Decimal, at: datetime, *, transaction_id: str, event_id: str, reason: str,
    description: str = "", metadata: dict[str, str] | None = None, idempotency_key: str | None = None,
    created_by: str = "",
) -> tuple[Wallet, Decimal, Written]:
    """Consume `credits` from the lots available at `at`; returns the wallet, the credits actually paid and the
    entry written."""
    before = available_credits(wallet.lots, at)
    lots, draws, shortfall = consume(wallet.lots, credits, at)
    paid = credits - shortfall
    entry = LedgerEntry(
        id=transaction_id, event_id=event_id, type="debit", reason=reason, credits=paid,
        credit_balance_before=before, credit_balance_after=available_credits(lots, at), at=at,
        idempotency_key=idempotency_key, description=description, metadata=metadata or {}, created_by=created_by,
        draws=draws, shortfall=shortfall,
    )
    debited, written = with_entry(wallet, lots, entry)
    return debited, paid, written


def ledgers(writes: Iterable[LedgerWrite]) -> dict[str, list[LedgerEntry]]:
    """Each wallet's ledger (oldest first) as a sequence of writes leaves it: an update replaces its entry."""
    by_wallet: dict[str, list[LedgerEntry]] = {}
    for write in writes:
        entries = by_wallet.setdefault(write.wallet_id, [])
        if write.entry.seq < len(entries):
            entries[write.entry.seq] = write.entry
        else:
            entries.append(write.entry)
    return by_wallet
