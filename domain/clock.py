"""What time alone makes happen to an account: periods to close and lots to expire. Pure: `now` is an argument."""

from datetime import datetime, timedelta

from domain.events import AnyEvent, CreditsExpired, PeriodClosed
from domain.state import Account


def clock_event_id(kind: str, *parts: str) -> str:
    """Deterministic ids: two projectors deciding the same clock event produce the same id (deduplicated)."""
    return ":".join(("clock", kind, *parts))


def due_events(account: Account, now: datetime, grace: timedelta) -> list[AnyEvent]:
    """Every period whose end + grace has passed, and every unexpired lot whose expiry has passed."""
    events: list[AnyEvent] = []
    for period in sorted(account.periods.values(), key=lambda p: p.start):
        if period.end + grace <= now:
            events.append(PeriodClosed(
                id=clock_event_id("close", period.start.isoformat()), at=now,
                period_start=period.start, period_end=period.end,
            ))
    for wallet in sorted(account.wallets.values(), key=lambda w: w.id):
        for lot in wallet.lots:
            if lot.expires_at is not None and lot.expires_at <= now and not lot.expired and lot.remaining > 0:
                events.append(CreditsExpired(
                    id=clock_event_id("expire", wallet.id, lot.id), at=now, wallet_id=wallet.id, lot_id=lot.id,
                    transaction_id=f"exp_{lot.id}",
                ))
    return events


def next_due(account: Account, grace: timedelta) -> datetime | None:
    """The earliest instant at which due_events would return something, or None."""
    moments = [p.end + grace for p in account.periods.values()]
    moments.extend(
        lot.expires_at for w in account.wallets.values() for lot in w.lots
        if lot.expires_at is not None and not lot.expired and lot.remaining > 0
    )
    return min(moments, default=None)
