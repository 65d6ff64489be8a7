"""After each event: the alert states a wallet moved to, and whether its auto top-up must fire.

Both are facts of the fold, evaluated at the event's instant, so a replay reaches the same states at the same
positions; the projector turns the changes into alert transitions and top-ups keyed by those positions.

Compiled with mypyc (the fold asks `watch` after every event that is not folded in a usage run): the transition's
Struct lives in domain/alert_transition.py, as mypyc would drop its class keywords.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

import msgspec

from domain.alert_transition import AlertTransition as AlertTransition
from domain.alerts import alert_state
from domain.balance import credit_figures, view_balance
from domain.money import exact, to_wire
from domain.settings import AlertState
from domain.state import Account, Wallet

AUTO_TOPUP_KEY: Final = "auto_topup"


def auto_topup_key(wallet_id: str, trigger: str) -> str:
    """The idempotency key of the top-up a trigger position asks for."""
    return f"{AUTO_TOPUP_KEY}:{wallet_id}:{trigger}"


def is_auto_topup(key: str | None) -> bool:
    return key is not None and key.startswith(f"{AUTO_TOPUP_KEY}:")


def watch(account: Account, position: str, at: datetime, may_trigger: bool = True) -> Account:
    """Re-evaluate alert states; arm auto top-up unless the event was itself an auto top-up (so it never loops)."""
    wallets = account.wallets
    changed = {w.id: _watched(account, w, position, at, may_trigger) for w in wallets.values() if watchable(w)}
    changed = {k: v for k, v in changed.items() if v is not wallets[k]}
    if not changed:
        return account
    return msgspec.structs.replace(account, wallets={**wallets, **changed})


def watchable(wallet: Wallet) -> bool:
    """Whether the watch can move this wallet at all (alerts or auto top-up on, or a state to leave)."""
    alerts = wallet.alert_settings is not None and wallet.alert_settings.alert_enabled
    topup = wallet.auto_topup is not None and wallet.auto_topup.enabled
    alarmed = wallet.ongoing_alert != "ok" or wallet.credit_alert != "ok"
    armed = wallet.auto_topup_trigger is not None
    return wallet.status != "closed" and (alerts or topup or alarmed or armed)


def _watched(account: Account, wallet: Wallet, position: str, at: datetime, may_trigger: bool) -> Wallet:
    credit_balance, real_time_credits = credit_figures(account, wallet, at)
    return watched_at(wallet, credit_balance, real_time_credits, position, at, may_trigger)


def watched_at(wallet: Wallet, credit_balance: Decimal, real_time_credits: Decimal, position: str, at: datetime,
               may_trigger: bool) -> Wallet:
    """The wallet after the event at `position`, given its figures then: the same object when nothing moved."""
    ongoing = alert_state(wallet.alert_settings, real_time_credits)
    credit = alert_state(wallet.alert_settings, credit_balance)
    trigger = wallet.auto_topup_trigger
    topup = wallet.auto_topup
    if trigger is not None and (topup is None or not topup.enabled or topup.threshold is None
                                or real_time_credits > topup.threshold):
        trigger = None  # the balance recovered before the top-up was appended: it is not needed any more
    in_flight = any(lot.pending for lot in wallet.lots)  # an unpaid invoiced top-up
    if (
        may_trigger and trigger is None and not in_flight and topup is not None and topup.enabled
        and topup.threshold is not None and wallet.status == "active" and real_time_credits <= topup.threshold
        and (wallet.last_auto_topup_at is None or topup.cooldown_seconds == 0  # stamps may arrive out of order
             or at >= wallet.last_auto_topup_at + timedelta(seconds=topup.cooldown_seconds))
    ):
        trigger = position
    if (ongoing, credit, trigger) == (wallet.ongoing_alert, wallet.credit_alert, wallet.auto_topup_trigger):
        return wallet
    armed_at = (None if trigger is None else at if trigger != wallet.auto_topup_trigger
                else wallet.auto_topup_armed_at)
    return msgspec.structs.replace(wallet, ongoing_alert=ongoing, credit_alert=credit, auto_topup_trigger=trigger,
                                   auto_topup_armed_at=armed_at)


@exact
def transitions(before: Account, after: Account, position: str, at: datetime) -> list[AlertTransition]:
    """The alert transitions the event at `position` caused, comparing the account before and after it."""
    found: list[AlertTransition] = []
    for wallet in after.wallets.values():
        old = before.wallets.get(wallet.id)
        for metric, field in (("ongoing_balance", "ongoing_alert"), ("credit_balance", "credit_alert")):
            previous: AlertState = getattr(old, field) if old is not None else "ok"
            current: AlertState = getattr(wallet, field)
            if previous == current:
                continue
            view = view_balance(after, wallet, at)
            value = view.real_time_credit_balance if metric == "ongoing_balance" else view.credit_balance
            found.append(AlertTransition(
                wallet_id=wallet.id, metric=metric, old=previous, new=current, value=to_wire(value),
                threshold=_threshold(wallet, current if current != "ok" else previous), position=position, at=at,
            ))
    return found


def _threshold(wallet: Wallet, state: AlertState) -> str | None:
    settings = wallet.alert_settings
    if settings is None:
        return None
    level = {"in_alarm": settings.critical, "warning": settings.warning, "info": settings.info}.get(state)
    return None if level is None else to_wire(level.threshold)
