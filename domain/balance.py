"""The balance view of a wallet at an instant: every figure of the real-time balance endpoint, exact."""

from datetime import datetime
from decimal import Decimal

from domain.alerts import alert_state
from domain.balance_view import BalanceView
from domain.lots import available_credits, breakdown
from domain.money import ZERO, canonical, divide, exact
from domain.state import Account, Wallet
from domain.usage import admits_usage, pending_charges, unpaid_amount


def pending_usage(account: Account, wallet: Wallet) -> Decimal:
    """Priced, unsettled usage of the open periods in the wallet's currency, where its config admits usage."""
    return pending_charges(account, wallet.currency) if admits_usage(wallet) else ZERO


def unpaid_invoices(account: Account, wallet: Wallet) -> Decimal:
    """What settled periods left unpaid in the wallet's currency."""
    return unpaid_amount(account, wallet.currency)


def _charges(account: Account, wallet: Wallet) -> tuple[Decimal, Decimal]:
    """(current period usage, unpaid invoices) the real-time figures deduct: none for a POST_PAID wallet."""
    if not deducts_charges(wallet):
        return ZERO, ZERO
    return pending_usage(account, wallet), unpaid_invoices(account, wallet)


def deducts_charges(wallet: Wallet) -> bool:
    """Whether the real-time figures deduct usage and unpaid invoices from the wallet (not for POST_PAID)."""
    return wallet.wallet_type != "POST_PAID"


def real_time_credits(credits: Decimal, wallet: Wallet, charges: Decimal) -> Decimal:
    """The credits left once `charges` (in currency) are paid: the one place the real-time credit balance is
    computed. With nothing to pay it is the credits themselves (no division)."""
    if not charges:
        return credits
    return divide(credits * wallet.conversion_rate - charges, wallet.conversion_rate)


@exact
def credit_figures(account: Account, wallet: Wallet, now: datetime) -> tuple[Decimal, Decimal]:
    """(credit_balance, real_time_credit_balance): what alerts and auto top-up watch, without the rest."""
    credits = available_credits(wallet.lots, now)
    usage, unpaid = _charges(account, wallet)
    return credits, real_time_credits(credits, wallet, usage + unpaid)


@exact
def view_balance(account: Account, wallet: Wallet, now: datetime) -> BalanceView:
    credits, balance, usage, unpaid, real_time = balance_figures(account, wallet, now)
    free, purchased = breakdown(wallet.lots, now)
    return BalanceView(
        credit_balance=credits, balance=balance, current_period_usage=usage, unpaid_invoices_amount=unpaid,
        real_time_balance=canonical(balance - usage - unpaid), real_time_credit_balance=real_time,
        free_credits=canonical(free), purchased_credits=canonical(purchased),
        alert_state=alert_state(wallet.alert_settings, real_time),
    )


@exact
def balance_figures(account: Account, wallet: Wallet, now: datetime) -> tuple[Decimal, Decimal, Decimal, Decimal,
                                                                             Decimal]:
    """(credit balance, balance, current period usage, unpaid invoices, real-time credit balance) at `now`, each
    canonical: the view without the free/purchased breakdown (a notice shows no breakdown)."""
    credits = available_credits(wallet.lots, now)
    usage, unpaid = _charges(account, wallet)
    return (canonical(credits), canonical(credits * wallet.conversion_rate), canonical(usage), canonical(unpaid),
            canonical(real_time_credits(credits, wallet, usage + unpaid)))


def view_span(wallet: Wallet, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(since, until): `view_balance` of this wallet gives the same view at every instant `t` with since <= t < until
    (None: unbounded), because no lot starts or stops counting in between (a lot counts while `t` < its expiry;
    nothing else in the view reads the instant)."""
    since: datetime | None = None
    until: datetime | None = None
    for lot in wallet.lots:
        expiry = lot.expires_at
        if expiry is None:
            continue
        if expiry <= now:
            since = expiry if since is None or expiry > since else since
        elif until is None or expiry < until:
            until = expiry
    return since, until
