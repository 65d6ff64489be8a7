"""Wire requests to domain commands: parse decimals and dates, fill defaults, refuse what is malformed."""

import hashlib
from datetime import datetime
from decimal import Decimal

import msgspec

from api.auth import Principal
from api.ids import new_id
from api.schemas import (
    AlertSettingsWire,
    AlertThresholdWire,
    AutoTopupWire,
    CreateWalletRequest,
    Decimalish,
    TopUpRequest,
    UpdateWalletRequest,
)
from domain.commands import CreateWallet, TopUpWallet, UpdateWallet
from domain.errors import ValidationFailed
from domain.money import parse_decimal
from domain.settings import AlertSettings, AlertThreshold, AutoTopup
from domain.timefmt import parse_rfc3339, parse_yyyymmdd
from domain.watch import is_auto_topup

_sorted_encoder = msgspec.json.Encoder(order="sorted")


def decimal_field(name: str, value: Decimalish | None) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return parse_decimal(value)
    except ValueError as exc:
        raise ValidationFailed(f"{name} is not a decimal number", {"field": name, "value": str(value)}) from exc


def time_field(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise ValidationFailed(f"{name}: {exc}", {"field": name, "value": value}) from exc


def _threshold(wire: AlertThresholdWire | None) -> AlertThreshold | None:
    if wire is None:
        return None
    return AlertThreshold(threshold=parse_decimal(repr(wire.threshold)), condition=wire.condition)


def alert_settings(wire: AlertSettingsWire | None) -> AlertSettings | None:
    if wire is None:
        return None
    return AlertSettings(alert_enabled=bool(wire.alert_enabled), critical=_threshold(wire.critical),
                         warning=_threshold(wire.warning), info=_threshold(wire.info))


def auto_topup(wire: AutoTopupWire | None) -> AutoTopup | None:
    if wire is None:
        return None
    return AutoTopup(
        enabled=bool(wire.enabled), threshold=decimal_field("auto_topup.threshold", wire.threshold),
        amount=decimal_field("auto_topup.amount", wire.amount), invoicing=bool(wire.invoicing),
        cooldown_seconds=wire.cooldown_seconds or 0,
    )


def _expiry_yyyymmdd(value: int | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_yyyymmdd(value)
    except ValueError as exc:
        raise ValidationFailed(f"initial_credits_to_load_expiry_date: {exc}",
                               {"field": "initial_credits_to_load_expiry_date", "value": value}) from exc


def create_wallet(body: CreateWalletRequest, caller: Principal, actor: str) -> CreateWallet:
    customer = body.customer_id or body.external_customer_id
    if not customer:
        raise ValidationFailed("customer_id or external_customer_id is required")
    expiry = time_field("initial_credits_expiry_date_utc", body.initial_credits_expiry_date_utc)
    return CreateWallet(
        event_id=new_id("evt"), actor=actor, wallet_id=new_id("wallet"), tenant_id=caller.tenant_id,
        environment_id=caller.environment_id, customer_id=customer, currency=body.currency.lower(),
        wallet_type=body.wallet_type, conversion_rate=decimal_field("conversion_rate", body.conversion_rate)
        or Decimal(1), topup_conversion_rate=decimal_field("topup_conversion_rate", body.topup_conversion_rate),
        allowed_price_types=tuple(body.config.allowed_price_types)
        if body.config and body.config.allowed_price_types else None,
        alert_settings=alert_settings(body.alert_settings), auto_topup=auto_topup(body.auto_topup),
        name=body.name or "", description=body.description or "", metadata=body.metadata or {},
        initial_credits=decimal_field("initial_credits_to_load", body.initial_credits_to_load) or Decimal(0),
        initial_credits_expire_at=expiry or _expiry_yyyymmdd(body.initial_credits_to_load_expiry_date),
        initial_transaction_id=new_id("wtx"),
    )


def update_wallet(wallet_id: str, body: UpdateWalletRequest, actor: str) -> UpdateWallet:
    return UpdateWallet(
        event_id=new_id("evt"), actor=actor, wallet_id=wallet_id, name=body.name, description=body.description,
        metadata=body.metadata, alert_settings=alert_settings(body.alert_settings),
        auto_topup=auto_topup(body.auto_topup),
        allowed_price_types=tuple(body.config.allowed_price_types)
        if body.config and body.config.allowed_price_types else None,
    )


def top_up(wallet_id: str, body: TopUpRequest, actor: str) -> TopUpWallet:
    if is_auto_topup(body.idempotency_key):
        raise ValidationFailed("idempotency keys starting with auto_topup: are reserved for automatic top-ups")
    credits = decimal_field("credits_to_add", body.credits_to_add)
    return TopUpWallet(
        event_id=new_id("evt"), actor=actor, wallet_id=wallet_id, transaction_id=new_id("wtx"),
        reason=body.transaction_reason, credits=credits,
        amount=None if credits is not None else decimal_field("amount", body.amount), priority=body.priority,
        expires_at=time_field("expiry_date_utc", body.expiry_date_utc), idempotency_key=body.idempotency_key,
        description=body.description or "", metadata=body.metadata or {},
    )


def fingerprint(body: msgspec.Struct) -> str:
    """A stable digest of a request body: a retry must send the same one."""
    return hashlib.sha256(_sorted_encoder.encode(body)).hexdigest()[:32]
