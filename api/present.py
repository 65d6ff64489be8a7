"""Domain state to wire shapes: wallets, balances and ledger entries as the Flexprice API shows them."""

from datetime import datetime
from decimal import Decimal
from typing import Literal, TypedDict

from api.schemas import (
    COOLDOWN_UNITS,
    AlertSettingsWire,
    AlertThresholdWire,
    AutoTopupWire,
    CooldownShown,
    CreditBreakdownWire,
    LotPaid,
    TransactionResponse,
    WalletBalanceResponse,
    WalletConfigWire,
    WalletResponse,
)
from domain.balance_view import BalanceView
from domain.events import WalletType
from domain.lots import is_available
from domain.money import ZERO, canonical, to_wire
from domain.references import parent_transaction, reference
from domain.settings import AlertSettings, AlertState, AlertThreshold, AutoTopup
from domain.state import LedgerEntry, Wallet, WalletStatus


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _threshold(threshold: AlertThreshold | None) -> AlertThresholdWire | None:
    if threshold is None:
        return None
    return AlertThresholdWire(threshold=float(threshold.threshold), condition=threshold.condition)


def alert_settings_wire(settings: AlertSettings | None) -> AlertSettingsWire | None:
    if settings is None:
        return None
    return AlertSettingsWire(
        alert_enabled=settings.alert_enabled, critical=_threshold(settings.critical),
        warning=_threshold(settings.warning), info=_threshold(settings.info),
    )


def auto_topup_wire(topup: AutoTopup | None) -> AutoTopupWire | None:
    if topup is None:
        return None
    return AutoTopupWire(
        enabled=topup.enabled, threshold=_number(topup.threshold), amount=_number(topup.amount),
        invoicing=topup.invoicing, cooldown_seconds=topup.cooldown_seconds, cooldown=_cooldown(topup.cooldown_seconds),
    )


class _WalletFields(TypedDict):
    """The fields a wallet and its balance response share (both are built from one of these)."""

    id: str
    customer_id: str
    tenant_id: str
    environment_id: str
    currency: str
    wallet_type: WalletType
    wallet_status: WalletStatus
    status: Literal["published"]
    name: str
    description: str
    metadata: dict[str, str]
    config: WalletConfigWire
    conversion_rate: str
    topup_conversion_rate: str
    balance: str
    credit_balance: str
    alert_state: AlertState
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    alert_settings: AlertSettingsWire | None
    auto_topup: AutoTopupWire | None
    credits_available_breakdown: CreditBreakdownWire | None


def _cooldown(seconds: int) -> CooldownShown:
    """`seconds` in the largest unit that divides it (Flexprice's form); no cooldown is 0 SECOND."""
    unit = next(name for name, length in reversed(COOLDOWN_UNITS.items()) if seconds % length == 0 and
                (seconds or length == 1))
    return CooldownShown(value=seconds // COOLDOWN_UNITS[unit], unit=unit)


def _common(wallet: Wallet, view: BalanceView, breakdown: bool) -> _WalletFields:
    return {
        "id": wallet.id, "customer_id": wallet.customer_id, "tenant_id": wallet.tenant_id,
        "environment_id": wallet.environment_id, "currency": wallet.currency, "wallet_type": wallet.wallet_type,
        "wallet_status": wallet.status, "status": "published", "name": wallet.name,
        "description": wallet.description, "metadata": wallet.metadata,
        "config": WalletConfigWire(
            allowed_price_types=list(wallet.allowed_price_types) if wallet.allowed_price_types else None
        ),
        "conversion_rate": to_wire(wallet.conversion_rate),
        "topup_conversion_rate": to_wire(wallet.topup_conversion_rate),
        "balance": to_wire(view.balance), "credit_balance": to_wire(view.credit_balance),
        "alert_state": view.alert_state, "created_at": wallet.created_at, "created_by": wallet.created_by,
        "updated_at": wallet.updated_at, "updated_by": wallet.updated_by,
        "alert_settings": alert_settings_wire(wallet.alert_settings),
        "auto_topup": auto_topup_wire(wallet.auto_topup),
        "credits_available_breakdown": CreditBreakdownWire(
            free=to_wire(view.free_credits), purchased=to_wire(view.purchased_credits)
        ) if breakdown else None,
    }


def wallet_response(wallet: Wallet, view: BalanceView, breakdown: bool = False) -> WalletResponse:
    return WalletResponse(**_common(wallet, view, breakdown))


def balance_response(
    wallet: Wallet, view: BalanceView, breakdown: bool, cached: bool, folded_position: str, folded_at: str,
    read_position: str,
) -> WalletBalanceResponse:
    return WalletBalanceResponse(
        **_common(wallet, view, breakdown),
        balance_updated_at=wallet.balance_updated_at,
        current_period_usage=to_wire(view.current_period_usage),
        unpaid_invoices_amount=to_wire(view.unpaid_invoices_amount),
        real_time_balance=to_wire(view.real_time_balance),
        real_time_credit_balance=to_wire(view.real_time_credit_balance),
        is_cached_fallback=cached, folded_position=folded_position, folded_at=folded_at or None,
        read_position=read_position,
    )


def transaction_response(wallet: Wallet, entry: LedgerEntry, now: datetime) -> TransactionResponse:
    rate = wallet.topup_conversion_rate if entry.type == "credit" else wallet.conversion_rate
    lot = next((lot for lot in wallet.lots if lot.id == entry.id), None) if entry.type == "credit" else None
    available = "0"  # a debit, or a credit whose lot is spent or expired (no longer kept)
    if lot is not None:
        available = to_wire(lot.remaining if is_available(lot, now) else ZERO)
    reference_type, reference_id = reference(entry)
    return TransactionResponse(
        id=entry.id, wallet_id=wallet.id, customer_id=wallet.customer_id, tenant_id=wallet.tenant_id,
        environment_id=wallet.environment_id, type=entry.type, transaction_reason=entry.reason,
        transaction_status="pending" if entry.pending else "completed", status="published",
        amount=to_wire(canonical(entry.credits * rate)),
        credit_amount=to_wire(entry.credits), credit_balance_before=to_wire(entry.credit_balance_before),
        credit_balance_after=to_wire(entry.credit_balance_after), currency=wallet.currency,
        conversion_rate=to_wire(wallet.conversion_rate), topup_conversion_rate=to_wire(wallet.topup_conversion_rate),
        created_at=entry.at, updated_at=entry.at, created_by=entry.created_by, updated_by=entry.created_by,
        credits_available=available, expiry_date=entry.expires_at, priority=entry.priority,
        idempotency_key=entry.idempotency_key, description=entry.description, metadata=entry.metadata,
        lots_paid=[LotPaid(transaction_id=d.lot_id, credits=to_wire(d.credits)) for d in entry.draws],
        shortfall=to_wire(entry.shortfall) if entry.shortfall else None,
        reference_type=reference_type, reference_id=reference_id, parent_transaction_id=parent_transaction(entry),
    )
