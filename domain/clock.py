"""What time alone makes happen to an account: periods to close and lots to expire. Pure: `now` is an argument."""

from datetime import datetime, timedelta

from domain.events import AnyEvent, CreditsExpired, CreditsGranted, PeriodClosed
from domain.references import EXPIRY_PREFIX
from domain.state import Account, Wallet
from domain.watch import auto_topup_key


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
        topup = wallet.auto_topup
        if (wallet.auto_topup_trigger is not None and wallet.status == "active" and topup is not None
                and topup.enabled and topup.amount is not None and topup.amount > 0):
            events.append(_auto_topup(wallet, wallet.auto_topup_trigger, now))
        for lot in wallet.lots:
            if lot.expires_at is not None and lot.expires_at <= now and not lot.expired and lot.remaining > 0:
                events.append(CreditsExpired(
                    id=clock_event_id("expire", wallet.id, lot.id), at=now, wallet_id=wallet.id, lot_id=lot.id,
                    transaction_id=f"{EXPIRY_PREFIX}{lot.id}",
                ))
    return events


def _auto_topup(wallet: Wallet, trigger: str, now: datetime) -> CreditsGranted:
    """The one top-up a trigger asks for: its ids derive from the trigger position, so it is appended once."""
    assert wallet.auto_topup is not None and wallet.auto_topup.amount is not None
    invoiced = wallet.auto_topup.invoicing
    return CreditsGranted(
        id=clock_event_id("autotopup", wallet.id, trigger), at=now, wallet_id=wallet.id,
        transaction_id=f"wtx_auto_{wallet.id}_{trigger}", credits=wallet.auto_topup.amount,
        reason="PURCHASED_CREDIT_INVOICED" if invoiced else "PURCHASED_CREDIT_DIRECT",
        idempotency_key=auto_topup_key(wallet.id, trigger), description="auto top-up", pending=invoiced,
    )


def next_due(account: Account, grace: timedelta) -> datetime | None:
    """The earliest instant at which due_events would return something, or None."""
    moments = [p.end + grace for p in account.periods.values()]
    moments.extend(w.auto_topup_armed_at for w in account.wallets.values()
                   if w.auto_topup_armed_at is not None and w.status == "active")
    moments.extend(
        lot.expires_at for w in account.wallets.values() for lot in w.lots
        if lot.expires_at is not None and not lot.expired and lot.remaining > 0
    )
    return min(moments, default=None)
