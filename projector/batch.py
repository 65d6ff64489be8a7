"""Fold one batch of feed entries into the snapshots of the accounts it touches."""

from collections.abc import Sequence
from datetime import timedelta

import msgspec

from domain.clock import next_due
from domain.codec import decode_account, encode_account
from domain.fold import advance
from domain.identity import AccountRef
from domain.money import to_wire
from domain.state import EMPTY_ACCOUNT, Account
from domain.timefmt import format_rfc3339
from domain.watch import AlertTransition, transitions
from store.entries import decode_entry
from store.keys import notice_key
from store.positions import is_after
from store.projection import AlertWrite, FeedEntry, Snapshot, SnapshotWrite

_alert_encoder = msgspec.json.Encoder()


class TransactionPayload(msgspec.Struct, frozen=True, kw_only=True):
    event_type: str
    tenant_id: str
    environment_id: str
    customer_id: str
    wallet_id: str
    transaction_id: str
    type: str
    reason: str
    credits: str
    credit_balance_after: str
    position: str
    at: str


class AlertPayload(msgspec.Struct, frozen=True, kw_only=True):
    """What the alerts stream carries for one transition (JSON)."""

    event_type: str
    tenant_id: str
    environment_id: str
    customer_id: str
    wallet_id: str
    metric: str
    old_state: str
    new_state: str
    balance: str
    threshold: str | None
    position: str
    at: str


class PoisonEntry(Exception):
    """A feed entry that cannot be decoded: its partition stops rather than skip it."""

    def __init__(self, position: str, reason: str) -> None:
        super().__init__(f"feed entry {position} cannot be decoded: {reason}")
        self.position = position
        self.reason = reason


def group_by_account(entries: Sequence[FeedEntry]) -> dict[AccountRef, list[FeedEntry]]:
    groups: dict[AccountRef, list[FeedEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.ref, []).append(entry)
    return groups


class Folded(msgspec.Struct):
    writes: list[SnapshotWrite] = []
    alerts: list[AlertWrite] = []
    applied: int = 0


def fold_batch(
    groups: dict[AccountRef, list[FeedEntry]], snapshots: Sequence[Snapshot], grace: timedelta
) -> Folded:
    """New snapshots for the accounts that changed, the alert transitions they caused, and the events applied.

    An entry at or before its snapshot's position was applied already (a redelivery) and changes nothing.
    """
    folded = Folded()
    for (ref, entries), snapshot in zip(groups.items(), snapshots, strict=True):
        account = decode_account(snapshot.state) if snapshot.state else EMPTY_ACCOUNT
        before = account.applied
        for entry in entries:
            if not is_after(entry.log_position, account.position):
                continue
            try:
                event = decode_entry(entry.payload, entry.rates)
            except Exception as exc:
                raise PoisonEntry(entry.position, str(exc)) from exc
            previous, account = account, advance(account, entry.log_position, event)
            folded.alerts.extend(
                alert_write(ref, t) for t in transitions(previous, account, entry.log_position, event.at)
            )
            folded.alerts.extend(transaction_writes(ref, previous, account, entry.log_position))
        if account.applied != before:
            folded.applied += account.applied - before
            due = next_due(account, grace)
            due_ms = None if due is None else int(due.timestamp() * 1000)
            folded.writes.append(SnapshotWrite(ref, account.position, encode_account(account), due_ms))
    return folded


def transaction_writes(ref: AccountRef, before: Account, after: Account, position: str) -> list[AlertWrite]:
    """`wallet.transaction.created` for each ledger entry the event added."""
    writes = []
    for wallet in after.wallets.values():
        old = before.wallets.get(wallet.id)
        for entry in wallet.ledger[len(old.ledger) if old else 0:]:
            payload = TransactionPayload(
                event_type="wallet.transaction.created", tenant_id=ref.tenant_id, environment_id=ref.environment_id,
                customer_id=ref.customer_id, wallet_id=wallet.id, transaction_id=entry.id, type=entry.type,
                reason=entry.reason, credits=to_wire(entry.credits),
                credit_balance_after=to_wire(entry.credit_balance_after), position=position,
                at=format_rfc3339(entry.at),
            )
            key = notice_key(ref.tenant_id, ref.environment_id, wallet.id, "tx", entry.id)
            writes.append(AlertWrite(key, _alert_encoder.encode(payload), int(entry.at.timestamp() * 1000)))
    return writes


def alert_write(ref: AccountRef, transition: AlertTransition) -> AlertWrite:
    payload = AlertPayload(
        event_type=transition.name, tenant_id=ref.tenant_id, environment_id=ref.environment_id,
        customer_id=ref.customer_id, wallet_id=transition.wallet_id, metric=transition.metric,
        old_state=transition.old, new_state=transition.new, balance=transition.value,
        threshold=transition.threshold, position=transition.position, at=format_rfc3339(transition.at),
    )
    key = notice_key(ref.tenant_id, ref.environment_id, transition.wallet_id, transition.metric, transition.position)
    return AlertWrite(key, _alert_encoder.encode(payload), int(transition.at.timestamp() * 1000))
