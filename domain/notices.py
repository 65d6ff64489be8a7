"""Notices: what the projector tells the outside world about a fold (alert transitions, new transactions).

One frozen struct per kind, tagged by `event_type` (the name webhook receivers subscribe to; it never changes once
written), in one union `AnyNotice`; domain/codec.py encodes and decodes them (JSON, the webhook body as is). Field
order is the wire order: shared fields first, then each kind's own, as they were written before notices were typed.
"""

from typing import get_args

import msgspec

from domain.identity import AccountRef
from domain.money import to_wire
from domain.settings import AlertState
from domain.state import EntryType, LedgerEntry
from domain.timefmt import format_rfc3339
from domain.watch import AlertTransition


class Notice(msgspec.Struct, frozen=True, tag_field="event_type"):
    """What every notice carries: whose wallet it is about."""

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
AnyNotice = TransactionCreated | AnyAlert
_ALERT_KINDS: dict[str, type[AnyAlert]] = {str(kind.__struct_config__.tag): kind for kind in get_args(AnyAlert)}


def alert_notice(ref: AccountRef, transition: AlertTransition) -> AnyAlert:
    """The notice of one alert transition (its kind named by the transition)."""
    return _ALERT_KINDS[transition.name](
        tenant_id=ref.tenant_id, environment_id=ref.environment_id, customer_id=ref.customer_id,
        wallet_id=transition.wallet_id, metric=transition.metric, old_state=transition.old,
        new_state=transition.new, balance=transition.value, threshold=transition.threshold,
        position=transition.position, at=format_rfc3339(transition.at),
    )


def transaction_notice(ref: AccountRef, wallet_id: str, entry: LedgerEntry, position: str) -> TransactionCreated:
    """The notice of a ledger entry the event at `position` added."""
    return TransactionCreated(
        tenant_id=ref.tenant_id, environment_id=ref.environment_id, customer_id=ref.customer_id,
        wallet_id=wallet_id, transaction_id=entry.id, type=entry.type, reason=entry.reason,
        credits=to_wire(entry.credits), credit_balance_after=to_wire(entry.credit_balance_after), position=position,
        at=format_rfc3339(entry.at),
    )
