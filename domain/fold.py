"""The fold: apply(account, event) -> account, yielding beside it the ledger writes it makes. Pure and total; time
comes only from the event."""

from collections.abc import Iterable
from typing import Final, assert_never

import msgspec

from domain.events import (
    AnyEvent,
    BillingCycleSet,
    CreditsDebited,
    CreditsExpired,
    CreditsGranted,
    CreditsPaid,
    InvoicePaid,
    PeriodClosed,
    UsageRecorded,
    WalletCreated,
    WalletFrozen,
    WalletTerminated,
    WalletUnfrozen,
    WalletUpdated,
)
from domain.ledger import Written, debit, settle_pending, with_entry
from domain.lots import available_credits, is_available
from domain.money import ZERO, exact
from domain.state import Account, LedgerEntry, LedgerWrite, Lot, Wallet
from domain.usage import close_period, pay_invoice, record_usage, set_cycle
from domain.watch import auto_topup_key, is_auto_topup, watch

replace: Final = msgspec.structs.replace
NOTHING: Final[Written] = ()


@exact
def apply(account: Account, event: AnyEvent) -> Account:
    """The account after `event`. Events about a wallet the account does not hold change nothing."""
    return _apply(account, event)[0]


def _apply(account: Account, event: AnyEvent) -> tuple[Account, Written]:
    match event:
        case WalletCreated():
            created, written = _created(event), NOTHING
            if event.initial_credits > 0:
                created, written = _granted(created, _initial_grant(event))
            return _put(account, created), written
        case UsageRecorded():
            return record_usage(account, event), ()
        case BillingCycleSet():
            return set_cycle(account, event), ()
        case PeriodClosed():
            return close_period(account, event)
        case InvoicePaid():
            return pay_invoice(account, event), ()
        case (
            WalletUpdated() | WalletTerminated() | WalletFrozen() | WalletUnfrozen()
            | CreditsGranted() | CreditsPaid() | CreditsDebited() | CreditsExpired()
        ):
            wallet = account.wallets.get(event.wallet_id)
            if wallet is None:
                return account, NOTHING
            changed, wallet_written = _apply_to_wallet(wallet, event)
            return _put(account, changed), wallet_written
        case _:
            assert_never(event)


@exact
def advance(account: Account, position: str, event: AnyEvent) -> Account:
    """Apply `event` found at stream `position`, watch alerts and auto top-up, and record the position."""
    return _advance(account, position, event)[0]


@exact
def advance_logged(account: Account, position: str, event: AnyEvent) -> tuple[Account, Written]:
    """`advance`, and the ledger changes the event made."""
    return _advance(account, position, event)


def _advance(account: Account, position: str, event: AnyEvent) -> tuple[Account, Written]:
    auto = isinstance(event, CreditsGranted) and is_auto_topup(event.idempotency_key)
    applied, written = _apply(account, event)
    watched = watch(applied, position, event.at, may_trigger=not auto)
    return replace(watched, position=position, applied=account.applied + 1), written


@exact
def fold(account: Account, entries: Iterable[tuple[str, AnyEvent]]) -> Account:
    """Every entry advanced in order, in the domain's decimal context (entered once for the whole fold)."""
    for position, event in entries:
        account = _advance(account, position, event)[0]
    return account


@exact
def fold_logged(account: Account, entries: Iterable[tuple[str, AnyEvent]]) -> tuple[Account, list[LedgerWrite]]:
    """`fold`, and the ledger changes it made, in order."""
    writes: list[LedgerWrite] = []
    for position, event in entries:
        account, written = _advance(account, position, event)
        writes.extend(written)
    return account, writes


def _put(account: Account, wallet: Wallet) -> Account:
    return replace(account, wallets={**account.wallets, wallet.id: wallet})


def _created(event: WalletCreated) -> Wallet:
    return Wallet(
        id=event.wallet_id, tenant_id=event.tenant_id, environment_id=event.environment_id,
        customer_id=event.customer_id, currency=event.currency, wallet_type=event.wallet_type,
        conversion_rate=event.conversion_rate, topup_conversion_rate=event.topup_conversion_rate,
        allowed_price_types=event.allowed_price_types, alert_settings=event.alert_settings,
        auto_topup=event.auto_topup, name=event.name, description=event.description,
        metadata=dict(event.metadata), status="active", created_at=event.at, created_by=event.created_by,
        updated_at=event.at, updated_by=event.created_by, balance_updated_at=event.at,
    )


def _initial_grant(event: WalletCreated) -> CreditsGranted:
    return CreditsGranted(
        id=event.id, at=event.at, wallet_id=event.wallet_id, transaction_id=event.initial_transaction_id,
        credits=event.initial_credits, reason="FREE_CREDIT_GRANT", expires_at=event.initial_credits_expire_at,
        description="initial credits", created_by=event.created_by,
    )


def _apply_to_wallet(
    wallet: Wallet,
    event: WalletUpdated | WalletTerminated | WalletFrozen | WalletUnfrozen
    | CreditsGranted | CreditsPaid | CreditsDebited | CreditsExpired,
) -> tuple[Wallet, Written]:
    match event:
        case WalletUpdated():
            return _updated(wallet, event), ()
        case WalletFrozen():
            return replace(wallet, status="frozen", updated_at=event.at, updated_by=event.updated_by), ()
        case WalletUnfrozen():
            return replace(wallet, status="active", updated_at=event.at, updated_by=event.updated_by), ()
        case WalletTerminated():
            return _terminated(wallet, event)
        case CreditsGranted():
            return _granted(wallet, event)
        case CreditsPaid():
            return _paid(wallet, event)
        case CreditsDebited():
            return _debited(wallet, event)
        case CreditsExpired():
            return _expired(wallet, event)
        case _:
            assert_never(event)


def _updated(wallet: Wallet, event: WalletUpdated) -> Wallet:
    changes: dict[str, object] = {
        name: value
        for name in ("name", "description", "metadata", "alert_settings", "auto_topup", "allowed_price_types")
        if (value := getattr(event, name)) is not None
    }
    return replace(wallet, **changes, updated_at=event.at, updated_by=event.updated_by)


def _granted(wallet: Wallet, event: CreditsGranted) -> tuple[Wallet, Written]:
    before = available_credits(wallet.lots, event.at)
    lot = Lot(
        id=event.transaction_id, granted=event.credits, remaining=event.credits, reason=event.reason,
        priority=event.priority, expires_at=event.expires_at, granted_at=event.at, seq=wallet.lot_seq,
        pending=event.pending,
    )
    lots = (*wallet.lots, lot)
    # available_credits(lots, at), which sums the same terms in the same order: one pass over the lots, not two
    after = before + lot.remaining if is_available(lot, event.at) else before
    entry = LedgerEntry(
        id=event.transaction_id, event_id=event.id, type="credit", reason=event.reason, credits=event.credits,
        credit_balance_before=before, credit_balance_after=after, at=event.at,
        priority=event.priority, expires_at=event.expires_at, idempotency_key=event.idempotency_key,
        description=event.description, metadata=dict(event.metadata), created_by=event.created_by,
        pending=event.pending,
    )
    granted, written = with_entry(replace(wallet, lot_seq=wallet.lot_seq + 1), lots, entry)
    trigger = wallet.auto_topup_trigger
    if trigger is not None and event.idempotency_key == auto_topup_key(wallet.id, trigger):
        granted = replace(granted, auto_topup_trigger=None, auto_topup_armed_at=None, last_auto_topup_at=event.at)
    return granted, written


def _paid(wallet: Wallet, event: CreditsPaid) -> tuple[Wallet, Written]:
    """A pending lot becomes available and its ledger entry completed; anything else is a no-op."""
    lot = next((x for x in wallet.lots if x.id == event.transaction_id and x.pending), None)
    if lot is None:
        return wallet, ()
    lots = tuple(replace(x, pending=False) if x.id == lot.id else x for x in wallet.lots)
    paid, written = settle_pending(wallet, lot.id)
    return replace(paid, lots=lots, balance_updated_at=event.at), written


def _debited(wallet: Wallet, event: CreditsDebited) -> tuple[Wallet, Written]:
    debited, _, written = debit(
        wallet, event.credits, event.at, transaction_id=event.transaction_id, event_id=event.id, reason=event.reason,
        description=event.description, metadata=dict(event.metadata), idempotency_key=event.idempotency_key,
        created_by=event.created_by,
    )
    return debited, written


def _terminated(wallet: Wallet, event: WalletTerminated) -> tuple[Wallet, Written]:
    closed = replace(wallet, status="closed", updated_at=event.at, updated_by=event.updated_by)
    available = available_credits(wallet.lots, event.at)
    if available <= 0:
        return closed, ()
    terminated, _, written = debit(closed, available, event.at, transaction_id=event.transaction_id,
                                   event_id=event.id, reason="WALLET_TERMINATION", created_by=event.updated_by)
    return terminated, written


def _expired(wallet: Wallet, event: CreditsExpired) -> tuple[Wallet, Written]:
    """Only a lot whose expiry has come can expire; anything else is a no-op."""
    lot = next((lot for lot in wallet.lots if lot.id == event.lot_id), None)
    if lot is None or lot.expired or lot.expires_at is None or event.at < lot.expires_at:
        return wallet, ()
    lots = tuple(replace(x, remaining=ZERO, expired=True) if x.id == lot.id else x for x in wallet.lots)
    entry = LedgerEntry(
        id=event.transaction_id, event_id=event.id, type="debit", reason="CREDIT_EXPIRED", credits=lot.remaining,
        credit_balance_before=available_credits(wallet.lots, event.at),
        credit_balance_after=available_credits(lots, event.at), at=event.at, draws=(),
    )
    return with_entry(wallet, lots, entry)
