"""Given/when/then over events: terse event builders, a fold at positions 1-0, 2-0, … and a balance read."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.balance import view_balance
from domain.balance_view import BalanceView
from domain.commands import AnyCommand
from domain.decide import decide
from domain.events import (
    AnyEvent,
    CreditsDebited,
    CreditsExpired,
    CreditsGranted,
    DebitReason,
    GrantReason,
    WalletCreated,
    WalletFrozen,
    WalletTerminated,
    WalletType,
    WalletUnfrozen,
)
from domain.fold import fold_logged
from domain.ledger import ledgers
from domain.settings import AlertSettings
from domain.state import EMPTY_ACCOUNT, Account, LedgerEntry, LedgerWrite, Wallet

T0 = datetime(2025, 1, 1, tzinfo=UTC)
WALLET = "w1"


def after(*, days: int = 0, hours: int = 0, minutes: int = 0, seconds: int = 0, micros: int = 0) -> datetime:
    """An instant relative to T0 (negative values go back in time)."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, microseconds=micros)


def created(
    wallet_id: str = WALLET, *, currency: str = "USD", wallet_type: WalletType = "PRE_PAID",
    rate: str = "1", topup_rate: str | None = None, alerts: AlertSettings | None = None, at: datetime = T0,
) -> WalletCreated:
    return WalletCreated(
        id=f"ev-create-{wallet_id}", at=at, wallet_id=wallet_id, tenant_id="t1", environment_id="env1",
        customer_id="c1", currency=currency, wallet_type=wallet_type, conversion_rate=Decimal(rate),
        topup_conversion_rate=Decimal(topup_rate or rate), alert_settings=alerts, created_by="tester",
    )


def granted(
    tx: str, credits: str, *, reason: GrantReason = "PURCHASED_CREDIT_DIRECT", priority: int | None = None,
    expires_at: datetime | None = None, at: datetime = T0, wallet_id: str = WALLET,
) -> CreditsGranted:
    return CreditsGranted(
        id=f"ev-{tx}", at=at, wallet_id=wallet_id, transaction_id=tx, credits=Decimal(credits), reason=reason,
        priority=priority, expires_at=expires_at,
    )


def debited(
    tx: str, credits: str, *, reason: DebitReason = "MANUAL_BALANCE_DEBIT", at: datetime = T0,
    wallet_id: str = WALLET,
) -> CreditsDebited:
    return CreditsDebited(
        id=f"ev-{tx}", at=at, wallet_id=wallet_id, transaction_id=tx, credits=Decimal(credits), reason=reason,
    )


def expired(lot_id: str, *, at: datetime, tx: str | None = None, wallet_id: str = WALLET) -> CreditsExpired:
    tx = tx or f"exp-{lot_id}"
    return CreditsExpired(id=f"ev-{tx}", at=at, wallet_id=wallet_id, lot_id=lot_id, transaction_id=tx)


def terminated(tx: str = "term", *, at: datetime = T0, wallet_id: str = WALLET) -> WalletTerminated:
    return WalletTerminated(id=f"ev-{tx}", at=at, wallet_id=wallet_id, transaction_id=tx, updated_by="ops")


def frozen(*, at: datetime = T0, wallet_id: str = WALLET) -> WalletFrozen:
    return WalletFrozen(id=f"ev-freeze-{at.isoformat()}", at=at, wallet_id=wallet_id, updated_by="ops")


def unfrozen(*, at: datetime = T0, wallet_id: str = WALLET) -> WalletUnfrozen:
    return WalletUnfrozen(id=f"ev-unfreeze-{at.isoformat()}", at=at, wallet_id=wallet_id, updated_by="ops")


_written: dict[int, tuple[Account, tuple[LedgerWrite, ...]]] = {}
"""The ledger changes behind each account `given` returned (the snapshot holds no ledger), by the account's id."""


def given(*events: AnyEvent, account: Account = EMPTY_ACCOUNT) -> Account:
    """Fold `events` after `account`, at the stream positions that follow its own ("1-0", "2-0", …)."""
    first = int(account.position.split("-")[0]) + 1
    folded, writes = fold_logged(account, ((f"{n}-0", event) for n, event in enumerate(events, start=first)))
    _written[id(folded)] = (folded, written_until(account) + tuple(writes))
    return folded


def written_until(account: Account) -> tuple[LedgerWrite, ...]:
    """Every ledger change made up to `account` (which `given` folded, or the empty account)."""
    if account is EMPTY_ACCOUNT:
        return ()
    kept = _written.get(id(account))
    if kept is None or kept[0] is not account:
        raise LookupError("this account was not folded by given(): its ledger is unknown")
    return kept[1]


def ledger_of(account: Account, wallet_id: str = WALLET) -> tuple[LedgerEntry, ...]:
    """The wallet's ledger, oldest first, as a fold from zero up to `account` wrote it."""
    return tuple(ledgers(written_until(account)).get(wallet_id, []))


def when(account: Account, command: AnyCommand, now: datetime) -> tuple[list[AnyEvent], Account]:
    """Decide `command` at `now`; return the events and the account with them folded in."""
    events = decide(account, command, now)
    return events, given(*events, account=account)


def wallet_of(account: Account, wallet_id: str = WALLET) -> Wallet:
    return account.wallets[wallet_id]


def last_entry(account: Account, wallet_id: str = WALLET) -> LedgerEntry:
    return ledger_of(account, wallet_id)[-1]


def balance_at(account: Account, now: datetime, wallet_id: str = WALLET) -> BalanceView:
    return view_balance(account, account.wallets[wallet_id], now)


def draws_of(entry: LedgerEntry) -> list[tuple[str, Decimal]]:
    return [(draw.lot_id, draw.credits) for draw in entry.draws]
