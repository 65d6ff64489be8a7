"""The wallet and the transaction as notices show them: their shapes (Structs, kept out of domain/notice_views.py
so that its functions compile, see setup.py)."""

from typing import Literal

import msgspec

from domain.settings import AlertSettings, AlertState
from domain.state import WalletStatus


class WalletShown(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    customer_id: str
    tenant_id: str
    environment_id: str
    currency: str
    wallet_type: str
    wallet_status: WalletStatus
    status: Literal["published"] = "published"
    name: str
    description: str
    metadata: dict[str, str]
    conversion_rate: str
    topup_conversion_rate: str
    balance: str
    credit_balance: str
    real_time_balance: str
    real_time_credit_balance: str
    current_period_usage: str
    alert_state: AlertState
    alert_settings: AlertSettings | None
    created_at: str
    updated_at: str
    created_by: str
    updated_by: str


class TransactionShown(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    wallet_id: str
    customer_id: str
    type: str
    transaction_reason: str
    transaction_status: Literal["completed", "pending"]
    credit_amount: str
    amount: str
    credit_balance_before: str
    credit_balance_after: str
    created_at: str
    created_by: str = ""
    description: str = ""
    metadata: dict[str, str] = {}
    idempotency_key: str | None = None
    priority: int | None = None
    expiry_date: str | None = None
