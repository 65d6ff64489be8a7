"""Wallet settings carried by events and snapshots: alert thresholds, auto top-up, price-type config."""

from decimal import Decimal
from typing import Literal

import msgspec

AlertCondition = Literal["below", "above"]
AlertState = Literal["ok", "info", "warning", "in_alarm"]
PriceType = Literal["ALL", "USAGE", "FIXED"]


class AlertThreshold(msgspec.Struct, frozen=True, kw_only=True):
    threshold: Decimal
    condition: AlertCondition = "below"


class AlertSettings(msgspec.Struct, frozen=True, kw_only=True):
    alert_enabled: bool = False
    critical: AlertThreshold | None = None
    warning: AlertThreshold | None = None
    info: AlertThreshold | None = None


class AutoTopup(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = False
    threshold: Decimal | None = None
    amount: Decimal | None = None
    invoicing: bool = False
    cooldown_seconds: int = 0
