"""Credit lots: which are available at an instant, and the deterministic order debits consume them in."""

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from domain.money import ZERO
from domain.state import Lot, LotDraw

NEVER = datetime.max.replace(tzinfo=UTC)
FREE_REASONS = frozenset({"FREE_CREDIT_GRANT", "SUBSCRIPTION_CREDIT_GRANT"})


def is_available(lot: Lot, at: datetime) -> bool:
    """A lot counts while it is paid for, has credits left and `at` is strictly before its expiry."""
    return (lot.remaining > ZERO and not lot.expired and not lot.pending
            and (lot.expires_at is None or at < lot.expires_at))


def available_credits(lots: Iterable[Lot], at: datetime) -> Decimal:
    return sum((lot.remaining for lot in lots if is_available(lot, at)), ZERO)


def held_credits(lots: Iterable[Lot], at: datetime) -> Decimal:
    """Credits the wallet holds at `at`: available ones and those of pending (unpaid) top-ups."""
    return sum((lot.remaining for lot in lots if not lot.expired and (lot.expires_at is None or at < lot.expires_at)),
               ZERO)


def consumption_key(lot: Lot) -> tuple[bool, int, bool, datetime, int]:
    """Priority ascending (none last), then expiry ascending (none last), then oldest first."""
    return (lot.priority is None, lot.priority or 0, lot.expires_at is None, lot.expires_at or NEVER, lot.seq)


def consume(
    lots: tuple[Lot, ...], credits: Decimal, at: datetime
) -> tuple[tuple[Lot, ...], tuple[LotDraw, ...], Decimal]:
    """Draw `credits` from the lots available at `at`; return the new lots, the draws and the unpaid rest."""
    owed = credits
    drawn: dict[str, Decimal] = {}
    for lot in sorted((lot for lot in lots if is_available(lot, at)), key=consumption_key):
        if owed <= 0:
            break
        take = min(lot.remaining, owed)
        drawn[lot.id] = take
        owed -= take
    if not drawn:
        return lots, (), owed
    new_lots = tuple(
        msgspec.structs.replace(lot, remaining=lot.remaining - drawn[lot.id]) if lot.id in drawn else lot
        for lot in lots
    )
    draws = tuple(LotDraw(lot_id, amount) for lot_id, amount in drawn.items())
    return new_lots, draws, owed


def breakdown(lots: Iterable[Lot], at: datetime) -> tuple[Decimal, Decimal]:
    """(free, purchased) credits available at `at`; every reason that is not a free grant counts as purchased."""
    free = purchased = ZERO
    for lot in lots:
        if not is_available(lot, at):
            continue
        if lot.reason in FREE_REASONS:
            free += lot.remaining
        else:
            purchased += lot.remaining
    return free, purchased
