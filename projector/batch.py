"""Fold one batch of feed entries into the snapshots of the accounts it touches."""

from collections.abc import Sequence
from datetime import timedelta

import msgspec

from domain.clock import next_due
from domain.codec import decode_account, encode_account
from domain.fold import advance_logged
from domain.identity import AccountRef
from domain.money import exact_arithmetic, to_wire
from domain.state import EMPTY_ACCOUNT, Account, LedgerWrite
from domain.timefmt import format_rfc3339
from domain.watch import AlertTransition, transitions
from store.entries import decode_entry
from store.keys import notice_key
from store.ledger import DEFAULT_KEEP, bound_ledger
from store.letters import DeadLetter, Kind, now_ms
from store.positions import is_after
from store.projection import AlertWrite, FeedEntry, QuarantineWrite, Snapshot, SnapshotWrite

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
    """A feed entry naming no readable account: its partition stops rather than skip it."""

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
    quarantines: list[QuarantineWrite] = []
    applied: int = 0


class AccountFold(msgspec.Struct):
    """One account's part of a batch: how far it folded, the notices it caused, and what stopped it."""

    account: Account
    alerts: list[AlertWrite]
    failure: DeadLetter | None = None
    ledger: list[LedgerWrite] = []


def fold_batch(
    groups: dict[AccountRef, list[FeedEntry]], snapshots: Sequence[Snapshot], grace: timedelta,
    ledger_keep: int = DEFAULT_KEEP,
) -> Folded:
    """New snapshots for the accounts that changed (with the ledger entries Redis keeps of `ledger_keep` per
    wallet), the alert transitions they caused, the accounts quarantined and the events applied. An entry at or
    before its snapshot's position was applied already (a redelivery) and changes nothing; a quarantined
    account's entries are left to the operator (they stay in its stream)."""
    folded = Folded()
    for (ref, entries), snapshot in zip(groups.items(), snapshots, strict=True):
        if snapshot.quarantined is None:
            _fold_one(folded, ref, entries, snapshot, grace, ledger_keep)
    return folded


def _fold_one(folded: Folded, ref: AccountRef, entries: list[FeedEntry], snapshot: Snapshot, grace: timedelta,
              keep: int) -> None:
    try:
        before = decode_account(snapshot.state) if snapshot.state else EMPTY_ACCOUNT
    except Exception as exc:
        folded.quarantines.append(QuarantineWrite(dead_letter(ref, entries[0], "fold", f"snapshot: {exc!r}")))
        return
    result = fold_entries(ref, before, entries)
    account, failure = result.account, result.failure
    due_ms: int | None = None
    if failure is None:
        try:
            due = next_due(account, grace)
            due_ms = None if due is None else int(due.timestamp() * 1000)
        except Exception as exc:  # the folded state is unusable: keep the snapshot as it was
            failure = dead_letter(ref, entries[-1], "fold", f"clock schedule: {exc!r}")
            account, result.alerts, result.ledger = before, [], []
    folded.alerts.extend(result.alerts)
    folded.applied += account.applied - before.applied
    ledger, trims = bound_ledger(before, account, result.ledger, keep)
    if failure is not None:
        changed = account.applied != before.applied
        folded.quarantines.append(QuarantineWrite(failure, account.position if changed else None,
                                                  encode_account(account) if changed else None, ledger, trims))
    elif account.applied != before.applied:
        folded.writes.append(SnapshotWrite(ref, account.position, encode_account(account), due_ms, ledger, trims))


def fold_entries(ref: AccountRef, account: Account, entries: Sequence[FeedEntry]) -> AccountFold:
    """Fold one account's entries in order, up to the first that cannot be decoded or folded or whose predecessor
    in the customer stream is missing (a gap): the fold stops there and says why."""
    result = AccountFold(account, [])
    with exact_arithmetic():  # entered once for the account's entries, not twice per event
        _fold_in_order(ref, entries, result)
    return result


def _fold_in_order(ref: AccountRef, entries: Sequence[FeedEntry], result: AccountFold) -> None:
    for entry in entries:
        try:
            if not is_after(entry.log_position, result.account.position):
                continue
            if entry.previous is not None and entry.previous != result.account.position:
                result.failure = dead_letter(ref, entry, "gap", f"the entry before it ({entry.previous}) was never "
                                             f"folded; the account is at {result.account.position}")
                return
            event = decode_entry(entry.payload, entry.rates)
            after, written = advance_logged(result.account, entry.log_position, event)
            alerts = [alert_write(ref, t) for t in transitions(result.account, after, entry.log_position, event.at)]
            alerts.extend(transaction_writes(ref, written, entry.log_position))
        except Exception as exc:  # one account's bad entry must never stop its partition
            result.failure = dead_letter(ref, entry, "fold", f"{type(exc).__name__}: {exc}")
            return
        result.account = after
        result.alerts.extend(alerts)
        result.ledger.extend(written)


def dead_letter(ref: AccountRef, entry: FeedEntry, kind: Kind, reason: str) -> DeadLetter:
    return DeadLetter(ref=ref, kind=kind, log_position=entry.log_position, feed_position=entry.position,
                      reason=reason[:2000], raw=entry.payload, rates=entry.rates, at_ms=now_ms())


def transaction_writes(ref: AccountRef, written: Sequence[LedgerWrite], position: str) -> list[AlertWrite]:
    """`wallet.transaction.created` for each ledger entry the event added."""
    writes = []
    for write in written:
        if not write.new:
            continue
        entry, wallet_id = write.entry, write.wallet_id
        payload = TransactionPayload(
            event_type="wallet.transaction.created", tenant_id=ref.tenant_id, environment_id=ref.environment_id,
            customer_id=ref.customer_id, wallet_id=wallet_id, transaction_id=entry.id, type=entry.type,
            reason=entry.reason, credits=to_wire(entry.credits),
            credit_balance_after=to_wire(entry.credit_balance_after), position=position,
            at=format_rfc3339(entry.at),
        )
        key = notice_key(ref.tenant_id, ref.environment_id, wallet_id, "tx", entry.id)
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
