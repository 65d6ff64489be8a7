"""decide(account, command, now) -> events: the rules a command must pass before it becomes facts."""

from datetime import datetime
from typing import assert_never

from domain.alerts import check_settings
from domain.commands import (
    AnyCommand,
    CreateWallet,
    DebitWallet,
    FreezeWallet,
    PayInvoice,
    PayTopUp,
    SetBillingCycle,
    TerminateWallet,
    TopUpWallet,
    UnfreezeWallet,
    UpdateWallet,
)
from domain.errors import AlreadyExists, InvalidOperation, NotFound, ValidationFailed
from domain.events import (
    AnyEvent,
    BillingCycleSet,
    CreditsDebited,
    CreditsGranted,
    CreditsPaid,
    InvoicePaid,
    WalletCreated,
    WalletFrozen,
    WalletTerminated,
    WalletUnfrozen,
    WalletUpdated,
)
from domain.lots import available_credits
from domain.money import divide
from domain.settings import AlertSettings, AutoTopup
from domain.state import Account, Wallet


def decide(account: Account, command: AnyCommand, now: datetime) -> list[AnyEvent]:
    match command:
        case CreateWallet():
            return _create(account, command, now)
        case UpdateWallet():
            return _update(account, command, now)
        case TopUpWallet():
            return _top_up(account, command, now)
        case DebitWallet():
            return _debit(account, command, now)
        case TerminateWallet():
            _open_wallet(account, command.wallet_id)
            return [WalletTerminated(id=command.event_id, at=now, wallet_id=command.wallet_id,
                                     transaction_id=command.transaction_id, updated_by=command.actor)]
        case FreezeWallet():
            wallet = _open_wallet(account, command.wallet_id)
            if wallet.status == "frozen":
                return []
            return [WalletFrozen(id=command.event_id, at=now, wallet_id=wallet.id, updated_by=command.actor)]
        case UnfreezeWallet():
            wallet = _open_wallet(account, command.wallet_id)
            if wallet.status == "active":
                return []
            return [WalletUnfrozen(id=command.event_id, at=now, wallet_id=wallet.id, updated_by=command.actor)]
        case SetBillingCycle():
            if command.count < 1 or command.count > 1000:
                raise ValidationFailed("period count must be between 1 and 1000", {"count": command.count})
            return [BillingCycleSet(id=command.event_id, at=now, anchor=command.anchor, unit=command.unit,
                                    count=command.count)]
        case PayInvoice():
            return _pay(account, command, now)
        case PayTopUp():
            wallet = _open_wallet(account, command.wallet_id)
            if not any(lot.id == command.transaction_id and lot.pending for lot in wallet.lots):
                raise InvalidOperation("no pending top-up with that transaction id",
                                       {"transaction_id": command.transaction_id})
            return [CreditsPaid(id=command.event_id, at=now, wallet_id=wallet.id,
                                transaction_id=command.transaction_id)]
        case _:
            assert_never(command)


def find_wallet(account: Account, wallet_id: str) -> Wallet:
    wallet = account.wallets.get(wallet_id)
    if wallet is None:
        raise NotFound(f"wallet {wallet_id} not found", {"wallet_id": wallet_id})
    return wallet


def _open_wallet(account: Account, wallet_id: str) -> Wallet:
    wallet = find_wallet(account, wallet_id)
    if wallet.status == "closed":
        raise InvalidOperation(f"wallet {wallet_id} is terminated", {"wallet_id": wallet_id})
    return wallet


def _active_wallet(account: Account, wallet_id: str) -> Wallet:
    wallet = _open_wallet(account, wallet_id)
    if wallet.status == "frozen":
        raise InvalidOperation(f"wallet {wallet_id} is frozen", {"wallet_id": wallet_id})
    return wallet


def _check_settings(alerts: AlertSettings | None, topup: AutoTopup | None) -> None:
    problems = check_settings(alerts) if alerts is not None else []
    if topup is not None and topup.enabled and (topup.threshold is None or not topup.amount or topup.amount <= 0):
        problems.append("auto top-up needs a threshold and a positive amount")
    if problems:
        raise ValidationFailed("; ".join(problems), {"problems": problems})


def _create(account: Account, command: CreateWallet, now: datetime) -> list[AnyEvent]:
    topup_rate = command.topup_conversion_rate
    if command.conversion_rate <= 0 or (topup_rate is not None and topup_rate <= 0):
        raise ValidationFailed("conversion rates must be positive")
    if command.initial_credits < 0:
        raise ValidationFailed("initial credits cannot be negative")
    _check_expiry(command.initial_credits_expire_at, now)
    _check_settings(command.alert_settings, command.auto_topup)
    if command.wallet_id in account.wallets:
        raise AlreadyExists(f"wallet {command.wallet_id} exists already", {"wallet_id": command.wallet_id})
    for wallet in account.wallets.values():
        if (wallet.status != "closed" and wallet.wallet_type == command.wallet_type == "PRE_PAID"
                and wallet.currency == command.currency):
            raise AlreadyExists(
                f"customer already has an active PRE_PAID wallet in {command.currency}",
                {"wallet_id": wallet.id},
            )
    events: list[AnyEvent] = [WalletCreated(
        id=command.event_id, at=now, wallet_id=command.wallet_id, tenant_id=command.tenant_id,
        environment_id=command.environment_id, customer_id=command.customer_id, currency=command.currency,
        wallet_type=command.wallet_type, conversion_rate=command.conversion_rate,
        topup_conversion_rate=command.topup_conversion_rate or command.conversion_rate,
        allowed_price_types=command.allowed_price_types, alert_settings=command.alert_settings,
        auto_topup=command.auto_topup, name=command.name, description=command.description,
        metadata=command.metadata, created_by=command.actor, initial_credits=command.initial_credits,
        initial_transaction_id=command.initial_transaction_id,
        initial_credits_expire_at=command.initial_credits_expire_at,
    )]
    return events


def _update(account: Account, command: UpdateWallet, now: datetime) -> list[AnyEvent]:
    _open_wallet(account, command.wallet_id)
    _check_settings(command.alert_settings, command.auto_topup)
    return [WalletUpdated(
        id=command.event_id, at=now, wallet_id=command.wallet_id, name=command.name,
        description=command.description, metadata=command.metadata, alert_settings=command.alert_settings,
        auto_topup=command.auto_topup, allowed_price_types=command.allowed_price_types, updated_by=command.actor,
    )]


def _top_up(account: Account, command: TopUpWallet, now: datetime) -> list[AnyEvent]:
    wallet = _active_wallet(account, command.wallet_id)
    if command.credits is not None:
        credits = command.credits
    elif command.amount is not None:
        credits = divide(command.amount, wallet.topup_conversion_rate)
    else:
        raise ValidationFailed("one of credits_to_add and amount is required")
    if credits <= 0:
        raise ValidationFailed("credits to add must be positive", {"credits": str(credits)})
    _check_expiry(command.expires_at, now)
    return [CreditsGranted(
        id=command.event_id, at=now, wallet_id=wallet.id, transaction_id=command.transaction_id,
        credits=credits, reason=command.reason, priority=command.priority, expires_at=command.expires_at,
        idempotency_key=command.idempotency_key, description=command.description, metadata=command.metadata,
        created_by=command.actor,
    )]


def _debit(account: Account, command: DebitWallet, now: datetime) -> list[AnyEvent]:
    wallet = _active_wallet(account, command.wallet_id)
    if command.credits <= 0:
        raise ValidationFailed("credits to debit must be positive")
    available = available_credits(wallet.lots, now)
    if command.credits > available:
        raise InvalidOperation(
            "insufficient credits", {"requested": str(command.credits), "available": str(available)}
        )
    return [CreditsDebited(
        id=command.event_id, at=now, wallet_id=wallet.id, transaction_id=command.transaction_id,
        credits=command.credits, reason=command.reason, idempotency_key=command.idempotency_key,
        description=command.description, metadata=command.metadata, created_by=command.actor,
    )]


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed("expiry must be in the future", {"expiry": expires_at.isoformat()})


def _pay(account: Account, command: PayInvoice, now: datetime) -> list[AnyEvent]:
    invoice = account.invoices.get(command.invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {command.invoice_id} not found", {"invoice_id": command.invoice_id})
    amount = invoice.unpaid if command.amount is None else command.amount
    if invoice.unpaid <= 0:
        raise InvalidOperation("invoice is paid already", {"invoice_id": invoice.id})
    if amount <= 0 or amount > invoice.unpaid:
        raise ValidationFailed("payment must be positive and at most the unpaid amount",
                               {"unpaid": str(invoice.unpaid), "amount": str(amount)})
    return [InvoicePaid(id=command.event_id, at=now, invoice_id=invoice.id, amount=amount,
                        reference=command.reference)]
