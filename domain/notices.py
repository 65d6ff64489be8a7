"""Notices: what the projector tells the outside world about a fold (alert transitions, new transactions).

One frozen struct per kind, tagged by `event_type` (the name webhook receivers subscribe to; it never changes once
written), in one union `AnyNotice`; domain/codec.py encodes and decodes them (JSON, the webhook body as is). Field
order is the wire order: shared fields first, then each kind's own, as they were written before notices were typed.
"""

from datetime import datetime
from typing import get_args

import msgspec

from domain.identity import AccountRef
from domain.money import to_wire
from domain.notice_shapes import TransactionShown, WalletShown
from domain.notice_views import transaction_shown, wallet_shown
from domain.settings import AlertState
from domain.state import Account, EntryType, LedgerEntry, Wallet
from domain.timefmt import format_rfc3339
from domain.watch import AlertTransition


class Notice(msgspec.Struct, frozen=True, tag_field="event_type", omit_defaults=True):
    """What every notice carries: whose wallet it is about. Fields added since notices were first written have
    defaults and come last (an absent one is not written, so older notices keep their bytes)."""

    tenant_id: str
    environment_id: str
    customer_id: str
    wallet_id: str

    @property
    def event_type(self) -> str:
        return str(self.__struct_config__.tag)


class TransactionCreated(Notice, frozen=True, kw_only=True, tag="wallet.transaction.created"):
    """A ledger entry an event added to a wallet."""

    transaction_id: str
    type: EntryType
    reason: str
    credits: str
    credit_balance_after: str
    position: str
    at: str
    transaction: TransactionShown | None = None
    wallet: WalletShown | None = None


class TransactionUpdated(Notice, frozen=True, kw_only=True, tag="wallet.transaction.updated"):
    """A ledger entry an event changed (a pending top-up paid)."""

    transaction_id: str
    position: str
    at: str
    transaction: TransactionShown | None = None
    wallet: WalletShown | None = None


class WalletChanged(Notice, frozen=True, kw_only=True):
    """A wallet created, updated (details, settings, frozen or unfrozen) or terminated by the event at
    `position`, shown as it stood after it."""

    position: str
    at: str
    wallet: WalletShown | None = None


class WalletCreatedNotice(WalletChanged, frozen=True, tag="wallet.created"):
    pass


class WalletUpdatedNotice(WalletChanged, frozen=True, tag="wallet.updated"):
    pass


class WalletTerminatedNotice(WalletChanged, frozen=True, tag="wallet.terminated"):
    pass


class BalanceAlert(Notice, frozen=True, kw_only=True):
    """A change of a wallet's alert state on `metric` (ongoing_balance or credit_balance); `balance` is the value
    it was evaluated on, `threshold` the one crossed."""

    metric: str
    old_state: AlertState
    new_state: AlertState
    balance: str
    threshold: str | None
    position: str
    at: str
    wallet: WalletShown | None = None


class OngoingBalanceDropped(BalanceAlert, frozen=True, tag="wallet.ongoing_balance.dropped"):
    pass


class OngoingBalanceRecovered(BalanceAlert, frozen=True, tag="wallet.ongoing_balance.recovered"):
    pass


class OngoingBalanceOk(BalanceAlert, frozen=True, tag="wallet.ongoing_balance.ok"):
    pass


class OngoingBalanceInfo(BalanceAlert, frozen=True, tag="wallet.ongoing_balance.info"):
    pass


class OngoingBalanceWarning(BalanceAlert, frozen=True, tag="wallet.ongoing_balance.warning"):
    pass


class CreditBalanceDropped(BalanceAlert, frozen=True, tag="wallet.credit_balance.dropped"):
    pass


class CreditBalanceRecovered(BalanceAlert, frozen=True, tag="wallet.credit_balance.recovered"):
    pass


class CreditBalanceOk(BalanceAlert, frozen=True, tag="wallet.credit_balance.ok"):
    pass


class CreditBalanceInfo(BalanceAlert, frozen=True, tag="wallet.credit_balance.info"):
    pass


class CreditBalanceWarning(BalanceAlert, frozen=True, tag="wallet.credit_balance.warning"):
    pass


AnyAlert = (OngoingBalanceDropped | OngoingBalanceRecovered | OngoingBalanceOk | OngoingBalanceInfo
            | OngoingBalanceWarning | CreditBalanceDropped | CreditBalanceRecovered | CreditBalanceOk
            | CreditBalanceInfo | CreditBalanceWarning)
AnyWalletChange = WalletCreatedNotice | WalletUpdatedNotice | WalletTerminatedNotice
AnyNotice = TransactionCreated | TransactionUpdated | AnyWalletChange | AnyAlert
_ALERT_KINDS: dict[str, type[AnyAlert]] = {str(kind.__struct_config__.tag): kind for kind in get_args(AnyAlert)}


def alert_notice(ref: AccountRef, transition: AlertTransition, wallet: WalletShown | None = None) -> AnyAlert:
    """The notice of one alert transition (its kind named by the transition)."""
    return _ALERT_KINDS[transition.name](
        tenant_id=ref.tenant_id, environment_id=ref.environment_id, customer_id=ref.customer_id,
        wallet_id=transition.wallet_id, metric=transition.metric, old_state=transition.old,
        new_state=transition.new, balance=transition.value, threshold=transition.threshold,
        position=transition.position, at=format_rfc3339(transition.at), wallet=wallet,
    )


def transaction_notice(ref: AccountRef, wallet_id: str, entry: LedgerEntry, position: str,
                       transaction: TransactionShown | None = None, wallet: WalletShown | None = None
                       ) -> TransactionCreated:
    """The notice of a ledger entry the event at `position` added."""
    return TransactionCreated(
        tenant_id=ref.tenant_id, environment_id=ref.environment_id, customer_id=ref.customer_id,
        wallet_id=wallet_id, transaction_id=entry.id, type=entry.type, reason=entry.reason,
        credits=to_wire(entry.credits), credit_balance_after=to_wire(entry.credit_balance_after), position=position,
        at=format_rfc3339(entry.at), transaction=transaction, wallet=wallet,
    )


def wallet_notices(ref: AccountRef, before: Account, after: Account, position: str, at: datetime
                   ) -> list[AnyWalletChange]:
    """`wallet.created`, `.terminated` or `.updated` for each wallet the event at `position` changed that way."""
    found: list[AnyWalletChange] = []
    for wallet in after.wallets.values():
        old = before.wallets.get(wallet.id)
        kind: type[AnyWalletChange]
        if old is None:
            kind = WalletCreatedNotice
        elif wallet.status == "closed" and old.status != "closed":
            kind = WalletTerminatedNotice
        elif wallet.updated_at != old.updated_at:
            kind = WalletUpdatedNotice
        else:
            continue
        found.append(kind(tenant_id=ref.tenant_id, environment_id=ref.environment_id, customer_id=ref.customer_id,
                          wallet_id=wallet.id, position=position, at=format_rfc3339(at),
                          wallet=wallet_shown(after, wallet, at)))
    return found


def transaction_updated(ref: AccountRef, wallet: Wallet, entry: LedgerEntry, position: str, after: Account,
                        at: datetime) -> TransactionUpdated:
    """The notice of a ledger entry the event at `position` changed."""
    return TransactionUpdated(
        tenant_id=ref.tenant_id, environment_id=ref.environment_id, customer_id=ref.customer_id,
        wallet_id=wallet.id, transaction_id=entry.id, position=position, at=format_rfc3339(at),
        transaction=transaction_shown(wallet, entry), wallet=wallet_shown(after, wallet, at),
    )
