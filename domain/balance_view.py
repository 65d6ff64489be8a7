"""The balance view's shape (a Struct: kept out of domain/balance.py so that its functions compile, see setup.py)."""

from decimal import Decimal

import msgspec

from domain.settings import AlertState


class BalanceView(msgspec.Struct, frozen=True, kw_only=True):
    credit_balance: Decimal
    balance: Decimal
    current_period_usage: Decimal
    unpaid_invoices_amount: Decimal
    real_time_balance: Decimal
    real_time_credit_balance: Decimal
    free_credits: Decimal
    purchased_credits: Decimal
    alert_state: AlertState
