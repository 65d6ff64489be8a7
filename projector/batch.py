"""Fold one batch of feed entries into the snapshots of the accounts it touches."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import assert_never

import msgspec

from domain.clock import next_due
from domain.codec import decode_account, decode_event, encode_account, encode_notice
from domain.events import AnyEvent, UsageRecorded
from domain.fold import advance_logged
from domain.identity import AccountRef
from domain.money import exact_arithmetic
from domain.notice_shapes import WalletShown
from domain.notice_views import transaction_shown, wallet_shown
from domain.notices import (
    AnyNotice,
    BalanceAlert,
    TransactionCreated,
    TransactionUpdated,
    WalletChanged,
    alert_notice,
    transaction_notice,
    transaction_updated,
    wallet_notices,
)
from domain.pricing import PriceVersion
from domain.state import EMPTY_ACCOUNT, Account, LedgerWrite
from domain.usage_run import fold_usage_run
from domain.watch import transitions
from store.entries import force_setattr
from store.keys import notice_key
from store.ledger import DEFAULT_KEEP, bound_ledger
from store.letters import DeadLetter, Kind, now_ms
from store.positions import parse
from store.projection import FeedEntry, NoticeWrite, QuarantineWrite, Snapshot, SnapshotWrite
from store.ratecard import RateCards


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
    notices: list[NoticeWrite] = []
    quarantines: list[QuarantineWrite] = []
    applied: int = 0


class AccountFold(msgspec.Struct):
    """One account's part of a batch: how far it folded, the notices it caused, and what stopped it."""

    account: Account
    notices: list[NoticeWrite]
    failure: DeadLetter | None = None
    ledger: list[LedgerWrite] = []


def fold_batch(
    groups: dict[AccountRef, list[FeedEntry]], snapshots: Sequence[Snapshot], grace: timedelta, cards: RateCards,
    ledger_keep: int = DEFAULT_KEEP,
) -> Folded:
    """New snapshots for the accounts that changed (with the ledger entries Redis keeps of `ledger_keep` per
    wallet), the notices they caused, the accounts quarantined and the events applied (usage priced by the rate
    cards `cards` holds: the caller loaded them). An entry at or
    before its snapshot's position was applied already (a redelivery) and changes nothing; a quarantined
    account's entries are left to the operator (they stay in its stream)."""
    folded = Folded()
    for (ref, entries), snapshot in zip(groups.items(), snapshots, strict=True):
        if snapshot.quarantined is None:
            _fold_one(folded, ref, entries, snapshot, grace, cards, ledger_keep)
    return folded


def _fold_one(folded: Folded, ref: AccountRef, entries: list[FeedEntry], snapshot: Snapshot, grace: timedelta,
              cards: RateCards, keep: int) -> None:
    try:
        before = snapshot.decoded if snapshot.decoded is not None else (
            decode_account(snapshot.state) if snapshot.state else EMPTY_ACCOUNT)
    except Exception as exc:
        letter = dead_letter(ref, entries[0], "fold", f"snapshot: {exc!r}")
        folded.quarantines.append(QuarantineWrite(letter, base=snapshot.state or b""))
        return
    result = fold_entries(ref, before, entries, cards)
    account, failure = result.account, result.failure
    due_ms: int | None = None
    if failure is None:
        try:
            due = next_due(account, grace)
            due_ms = None if due is None else int(due.timestamp() * 1000)
        except Exception as exc:  # the folded state is unusable: keep the snapshot as it was
            failure = dead_letter(ref, entries[-1], "fold", f"clock schedule: {exc!r}")
            account, result.notices, result.ledger = before, [], []
    folded.notices.extend(result.notices)
    folded.applied += account.applied - before.applied
    ledger, trims = bound_ledger(before, account, result.ledger, keep)
    if failure is not None:
        changed = account.applied != before.applied
        folded.quarantines.append(QuarantineWrite(failure, account.position if changed else None,
                                                  encode_account(account) if changed else None, ledger, trims,
                                                  snapshot.state or b""))
    elif account.applied != before.applied:
        folded.writes.append(SnapshotWrite(ref, account.position, encode_account(account), due_ms, ledger, trims,
                                           snapshot.state or b"", account))


def fold_entries(ref: AccountRef, account: Account, entries: Sequence[FeedEntry], cards: RateCards) -> AccountFold:
    """Fold one account's entries in order, up to the first that cannot be decoded or folded or whose predecessor
    in the customer stream is missing (a gap): the fold stops there and says why."""
    result = AccountFold(account, [])
    with exact_arithmetic():  # entered once for the account's entries, not twice per event
        _fold_in_order(ref, entries, result, cards)
    return result


def _fold_in_order(ref: AccountRef, entries: Sequence[FeedEntry], result: AccountFold, cards: RateCards) -> None:
    """Consecutive usage entries wait in `run` and fold in one step (domain/usage_run.py) when anything else comes,
    or the end: every check below sees the position the account reaches once they are folded."""
    run: list[tuple[str, UsageRecorded]] = []  # the waiting usage entries' positions and events, as folded
    waiting: list[FeedEntry] = []  # their entries (a dead letter names the entry)
    position = result.account.position
    reached: tuple[int, int] | None = None  # `position` parsed (once: `is_after(a, b)` is `parse(a) > parse(b)`)
    digest: bytes | None = None  # the rate card asked for last and its prices: a batch's usage mostly names one
    prices: tuple[PriceVersion, ...] = ()
    for entry in entries:
        try:
            here = parse(entry.log_position)
            if reached is None:
                reached = parse(position)
            if not here > reached:
                continue
            if entry.previous is not None and entry.previous != position:
                if _fold_run(ref, run, waiting, result):
                    result.failure = dead_letter(ref, entry, "gap", f"the entry before it ({entry.previous}) was "
                                                 f"never folded; the account is at {result.account.position}")
                return
            event = decode_event(entry.payload)  # decode_entry, inlined: this loop runs once an event
            rates = entry.rates
            if rates is not None and isinstance(event, UsageRecorded):
                if rates != digest:
                    digest, prices = rates, cards.prices(rates)
                force_setattr(event, "prices", prices)
        except Exception as exc:  # one account's bad entry must never stop its partition
            if _fold_run(ref, run, waiting, result):
                result.failure = dead_letter(ref, entry, "fold", f"{type(exc).__name__}: {exc}")
            return
        position, reached = entry.log_position, here
        if isinstance(event, UsageRecorded):
            run.append((position, event))
            waiting.append(entry)
        elif not _fold_run(ref, run, waiting, result) or not _fold_event(ref, entry, event, result):
            return
    _fold_run(ref, run, waiting, result)


def _fold_run(ref: AccountRef, run: list[tuple[str, UsageRecorded]], waiting: list[FeedEntry],
              result: AccountFold) -> bool:
    """Fold the waiting usage entries (`run`, their entries `waiting`): in one step up to any that the watch must
    see alone (or that fails), that one alone, and so on; False when one failed (`result.failure` says why)."""
    done = 0
    while done < len(run):
        result.account, folded = fold_usage_run(result.account, run[done:] if done else run)
        done += folded
        if done < len(run):
            if not _fold_event(ref, waiting[done], run[done][1], result):
                return False
            done += 1
    run.clear()
    waiting.clear()
    return True


def _fold_event(ref: AccountRef, entry: FeedEntry, event: AnyEvent, result: AccountFold) -> bool:
    """Fold one event with its ledger writes and notices; False when it failed (`result.failure` says why)."""
    try:
        after, written = advance_logged(result.account, entry.log_position, event)
        notices = notice_writes(ref, result.account, after, entry.log_position, event.at, written)
    except Exception as exc:  # one account's bad entry must never stop its partition
        result.failure = dead_letter(ref, entry, "fold", f"{type(exc).__name__}: {exc}")
        return False
    result.account = after
    result.notices.extend(notices)
    result.ledger.extend(written)
    return True


def dead_letter(ref: AccountRef, entry: FeedEntry, kind: Kind, reason: str) -> DeadLetter:
    return DeadLetter(ref=ref, kind=kind, log_position=entry.log_position, feed_position=entry.position,
                      reason=reason[:2000], raw=entry.payload, rates=entry.rates, at_ms=now_ms())


def notice_write(notice: AnyNotice, at: datetime) -> NoticeWrite:
    """A notice as the notices stream takes it: under the key that lets it be written only once, whatever refolds
    the event that caused it (an alert by its metric and position, a transaction by its id, a change of a
    transaction or a wallet by the position that made it)."""
    match notice:
        case BalanceAlert():
            parts: tuple[str, ...] = (notice.metric, notice.position)
        case TransactionCreated():
            parts = ("tx", notice.transaction_id)
        case TransactionUpdated():
            parts = ("tx-updated", notice.transaction_id, notice.position)
        case WalletChanged():
            parts = (notice.event_type, notice.position)
        case _:
            assert_never(notice)
    key = notice_key(notice.tenant_id, notice.environment_id, notice.wallet_id, *parts)
    return NoticeWrite(key, encode_notice(notice), int(at.timestamp() * 1000))


def notice_writes(ref: AccountRef, before: Account, after: Account, position: str, at: datetime,
                  written: Sequence[LedgerWrite]) -> list[NoticeWrite]:
    """The notices of one event: wallets it created, updated or terminated, its alert transitions, then
    `wallet.transaction.created` for each ledger entry it added (`.updated` for each it changed); each shows the
    wallet as the event left it (worked out once per wallet and instant)."""
    writes = [notice_write(n, at) for n in wallet_notices(ref, before, after, position, at)]
    views: dict[tuple[str, datetime], WalletShown] = {}

    def shown(wallet_id: str, when: datetime) -> WalletShown:
        view = views.get((wallet_id, when))
        if view is None:
            view = views[wallet_id, when] = wallet_shown(after, after.wallets[wallet_id], when)
        return view

    for t in transitions(before, after, position, at):
        writes.append(notice_write(alert_notice(ref, t, shown(t.wallet_id, t.at)), t.at))
    for w in written:
        wallet = after.wallets[w.wallet_id]
        if w.new:
            notice: AnyNotice = transaction_notice(ref, w.wallet_id, w.entry, position,
                                                   transaction_shown(wallet, w.entry), shown(wallet.id, w.entry.at))
        else:
            notice = transaction_updated(ref, wallet, w.entry, position, after, at)
        writes.append(notice_write(notice, w.entry.at if w.new else at))
    return writes
