"""Wire requests to domain commands: parse decimals and dates, fill defaults, refuse what is malformed."""

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from api.auth import Principal
from api.ids import new_id
from api.schemas import (
    COOLDOWN_UNITS,
    AlertSettingsWire,
    AlertThresholdWire,
    AutoTopupRequest,
    CooldownWire,
    CreateWalletRequest,
    Decimalish,
    TopUpRequest,
    UpdateWalletRequest,
)
from domain.bounds import COOLDOWN_MAX_SECONDS, DECIMAL_TEXT_MAX_LENGTH, PRIORITY_MAX
from domain.commands import CreateWallet, TopUpWallet, UpdateWallet
from domain.errors import ValidationFailed
from domain.money import parse_decimal
from domain.settings import AlertSettings, AlertThreshold, AutoTopup
from domain.timefmt import parse_rfc3339, parse_yyyymmdd
from domain.watch import is_auto_topup

_sorted_encoder = msgspec.json.Encoder(order="sorted")
Sign = Literal["any", "positive", "non_negative"]


def _shown(value: Decimalish | Decimal) -> str:
    """The start of a refused value, safe to echo (a huge integer is not turned into its digits)."""
    if isinstance(value, int) and value.bit_length() > 4 * DECIMAL_TEXT_MAX_LENGTH:
        return f"<an integer of {value.bit_length()} bits>"
    return (value if isinstance(value, str) else repr(value))[:DECIMAL_TEXT_MAX_LENGTH]


def decimal_field(name: str, value: Decimalish | Decimal | None, sign: Sign = "any") -> Decimal | None:
    """An in-bounds decimal (domain/money.py states the grammar); None when absent; a 400 naming `name` else."""
    if value is None or value == "":
        return None
    try:
        parsed = parse_decimal(value)
    except ValueError as exc:
        raise ValidationFailed(f"{name} is not an in-bounds decimal: {exc}",
                               {"field": name, "value": _shown(value)}) from exc
    if (sign == "positive" and parsed <= 0) or (sign == "non_negative" and parsed < 0):
        raise ValidationFailed(f"{name} must be {sign.replace('_', '-')}", {"field": name, "value": _shown(value)})
    return parsed


def decimal_or(name: str, value: Decimalish | Decimal | None, default: Decimal, sign: Sign = "any") -> Decimal:
    """decimal_field with a default for an absent value (a given zero stays zero)."""
    parsed = decimal_field(name, value, sign)
    return default if parsed is None else parsed


def int_field(name: str, value: int | None, highest: int) -> int | None:
    """An integer in [0, highest], or None when absent."""
    if value is not None and not 0 <= value <= highest:
        raise ValidationFailed(f"{name} must be an integer from 0 to {highest}",
                               {"field": name, "value": _shown(value)})
    return value


def time_field(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise ValidationFailed(f"{name}: {exc}", {"field": name, "value": value}) from exc


def _threshold(level: str, wire: AlertThresholdWire | None) -> AlertThreshold | None:
    if wire is None:
        return None
    threshold = decimal_or(f"alert_settings.{level}.threshold", wire.threshold, Decimal(0))
    return AlertThreshold(threshold=threshold, condition=wire.condition)


def alert_settings(wire: AlertSettingsWire | None) -> AlertSettings | None:
    if wire is None:
        return None
    return AlertSettings(alert_enabled=bool(wire.alert_enabled), critical=_threshold("critical", wire.critical),
                         warning=_threshold("warning", wire.warning), info=_threshold("info", wire.info))


def auto_topup(wire: AutoTopupRequest | None) -> AutoTopup | None:
    if wire is None:
        return None
    seconds = int_field("auto_topup.cooldown_seconds", wire.cooldown_seconds, COOLDOWN_MAX_SECONDS)
    if wire.cooldown is not None:
        if seconds is not None:
            raise ValidationFailed("auto_topup takes cooldown or cooldown_seconds, not both",
                                   {"cooldown_seconds": seconds})
        seconds = cooldown_seconds(wire.cooldown)
    return AutoTopup(
        enabled=bool(wire.enabled), threshold=decimal_field("auto_topup.threshold", exact_decimal(
            "auto_topup.threshold", wire.threshold)),
        amount=decimal_field("auto_topup.amount", exact_decimal("auto_topup.amount", wire.amount)),
        invoicing=bool(wire.invoicing), cooldown_seconds=seconds or 0,
    )


def exact_decimal(name: str, raw: msgspec.Raw | msgspec.UnsetType) -> str | None:
    """The decimal text of a JSON number (its digits as written) or of a JSON string; None when absent or null;
    anything else is a 400. decimal_field then holds either to the decimal grammar and its bounds."""
    if raw is msgspec.UNSET or bytes(raw) == b"null":
        return None
    data = bytes(raw)
    if data.startswith(b'"'):
        return msgspec.json.decode(data, type=str)
    if data[:1] in (b"-", *(bytes([c]) for c in b"0123456789")):
        return data.decode()
    raise ValidationFailed(f"{name} must be a number or a decimal string", {"field": name})


def cooldown_seconds(wire: CooldownWire) -> int:
    """Flexprice's `{value, unit}` as whole seconds, exactly: an unknown unit, a value that is no in-bounds decimal,
    a fraction of a second or more than COOLDOWN_MAX_SECONDS is a 400."""
    unit = COOLDOWN_UNITS.get(wire.unit.upper())
    if unit is None:
        raise ValidationFailed(f"auto_topup.cooldown.unit must be one of {', '.join(COOLDOWN_UNITS)}",
                               {"field": "auto_topup.cooldown.unit", "value": wire.unit[:16]})
    value = decimal_field("auto_topup.cooldown.value", exact_decimal("auto_topup.cooldown.value", wire.value),
                          "non_negative")
    if value is None:
        raise ValidationFailed("auto_topup.cooldown.value is required", {"field": "auto_topup.cooldown.value"})
    seconds = value * unit
    if seconds != seconds.to_integral_value() or seconds > COOLDOWN_MAX_SECONDS:
        raise ValidationFailed(f"auto_topup.cooldown must be a whole number of seconds from 0 to "
                               f"{COOLDOWN_MAX_SECONDS}", {"field": "auto_topup.cooldown", "seconds": str(seconds)})
    return int(seconds)


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
        wallet_type=body.wallet_type,
        conversion_rate=decimal_or("conversion_rate", body.conversion_rate, Decimal(1), "positive"),
        topup_conversion_rate=decimal_field("topup_conversion_rate", body.topup_conversion_rate, "positive"),
        allowed_price_types=tuple(body.config.allowed_price_types)
        if body.config and body.config.allowed_price_types else None,
        alert_settings=alert_settings(body.alert_settings), auto_topup=auto_topup(body.auto_topup),
        name=body.name or "", description=body.description or "", metadata=body.metadata or {},
        initial_credits=decimal_or("initial_credits_to_load", body.initial_credits_to_load, Decimal(0),
                                   "non_negative"),
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
    credits = decimal_field("credits_to_add", body.credits_to_add, "positive")
    amount = decimal_field("amount", body.amount, "positive")
    return TopUpWallet(
        event_id=new_id("evt"), actor=actor, wallet_id=wallet_id, transaction_id=new_id("wtx"),
        reason=body.transaction_reason, credits=credits,
        amount=None if credits is not None else amount,
        priority=int_field("priority", body.priority, PRIORITY_MAX),
        expires_at=time_field("expiry_date_utc", body.expiry_date_utc), idempotency_key=body.idempotency_key,
        description=body.description or "", metadata=body.metadata or {},
    )


def fingerprint(body: msgspec.Struct) -> str:
    """A stable digest of a request body: a retry must send the same one."""
    return hashlib.sha256(_sorted_encoder.encode(body)).hexdigest()[:32]
