"""The wallet and the transaction as a notice shows them, taken at the notice's moment: Flexprice's field names,
money as exact decimal strings, so a webhook can show a receiver the wallet as it was when the notice happened."""

from datetime import datetime
from decimal import Decimal

from domain.alerts import alert_state
from domain.balance import balance_figures
from domain.money import fixed_point, to_wire
from domain.notice_shapes import TransactionShown, WalletShown
from domain.state import Account, LedgerEntry, Wallet
from domain.timefmt import format_rfc3339


def wallet_shown(account: Account, wallet: Wallet, at: datetime) -> WalletShown:
    """The wallet and its balances as a read at `at` shows them (the figures view_balance gives)."""
    credits, balance, usage, unpaid, real_time = balance_figures(account, wallet, at)
    return WalletShown(
        id=wallet.id, customer_id=wallet.customer_id, tenant_id=wallet.tenant_id,
        environment_id=wallet.environment_id, currency=wallet.currency, wallet_type=wallet.wallet_type,
        wallet_status=wallet.status, name=wallet.name, description=wallet.description, metadata=wallet.metadata,
        conversion_rate=to_wire(wallet.conversion_rate), topup_conversion_rate=to_wire(wallet.topup_conversion_rate),
        balance=_wire(balance), credit_balance=_wire(credits),
        real_time_balance=to_wire(balance - usage - unpaid), real_time_credit_balance=_wire(real_time),
        current_period_usage=_wire(usage), alert_state=alert_state(wallet.alert_settings, real_time),
        alert_settings=wallet.alert_settings, created_at=format_rfc3339(wallet.created_at),
        updated_at=format_rfc3339(wallet.updated_at), created_by=wallet.created_by, updated_by=wallet.updated_by,
    )


def _wire(value: Decimal) -> str:
    """A canonical decimal as to_wire writes it (without making it canonical a second time)."""
    return fixed_point(value)


def transaction_shown(wallet: Wallet, entry: LedgerEntry) -> TransactionShown:
    """A ledger entry as Flexprice's wallet transaction shows it (`amount` in the wallet's currency)."""
    rate = wallet.topup_conversion_rate if entry.type == "credit" else wallet.conversion_rate
    return TransactionShown(
        id=entry.id, wallet_id=wallet.id, customer_id=wallet.customer_id, type=entry.type,
        transaction_reason=entry.reason, transaction_status="pending" if entry.pending else "completed",
        credit_amount=to_wire(entry.credits), amount=to_wire(entry.credits * rate),
        credit_balance_before=to_wire(entry.credit_balance_before),
        credit_balance_after=to_wire(entry.credit_balance_after), created_at=format_rfc3339(entry.at),
        created_by=entry.created_by, description=entry.description, metadata=entry.metadata,
        idempotency_key=entry.idempotency_key, priority=entry.priority,
        expiry_date=format_rfc3339(entry.expires_at) if entry.expires_at else None,
    )
