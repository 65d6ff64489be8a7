"""Wallet ledger mechanics shared by the fold: debit lots in lot order and record the entry."""

from datetime import datetime
from decimal import Decimal

import msgspec

from domain.lots import available_credits, consume
from domain.state import LedgerEntry, Lot, Wallet


def with_entry(wallet: Wallet, lots: tuple[Lot, ...], entry: LedgerEntry) -> Wallet:
    """Record the entry; lots with nothing left (spent or expired) are dropped so snapshots do not grow with them."""
    live = tuple(lot for lot in lots if lot.remaining > 0 or lot.pending)
    return msgspec.structs.replace(wallet, lots=live, ledger=(*wallet.ledger, entry), balance_updated_at=entry.at)


def debit(
    wallet: Wallet, credits: Decimal, at: datetime, *, transaction_id: str, event_id: str, reason: str,
    description: str = "", metadata: dict[str, str] | None = None, idempotency_key: str | None = None,
    created_by: str = "",
) -> tuple[Wallet, Decimal]:
    """Consume `credits` from the lots available at `at`; returns the wallet and the credits actually paid."""
    before = available_credits(wallet.lots, at)
    lots, draws, shortfall = consume(wallet.lots, credits, at)
    paid = credits - shortfall
    entry = LedgerEntry(
        id=transaction_id, event_id=event_id, type="debit", reason=reason, credits=paid,
        credit_balance_before=before, credit_balance_after=available_credits(lots, at), at=at,
        idempotency_key=idempotency_key, description=description, metadata=metadata or {}, created_by=created_by,
        draws=draws, shortfall=shortfall,
    )
    return with_entry(wallet, lots, entry), paid
