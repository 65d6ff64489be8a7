"""Prove the projection equals the log: fold each account from zero and compare with its snapshot and its stored
ledger, field by field."""

from collections.abc import Iterable, Sequence

import msgspec
from redis.exceptions import ResponseError

from domain.codec import decode_account
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT, Account
from store.entries import LogEntry, fold_log
from store.eventstore import EventStore
from store.ledger import DEFAULT_KEEP, StoredLedger, ledger_differences, load_with_snapshot
from store.positions import ORIGIN, is_after, text
from store.projection import Projection, Snapshot
from store.ratecard import RateCards


class Drift(msgspec.Struct, frozen=True):
    ref: AccountRef
    field: str
    snapshot: str
    log: str


class Problem(msgspec.Struct, frozen=True):
    """An account verify could not compare: quarantined, its snapshot unreadable, or its stream unfoldable."""

    ref: AccountRef
    reason: str


class VerifyReport(msgspec.Struct):
    accounts: int = 0
    events: int = 0
    drifts: list[Drift] = []
    behind: list[AccountRef] = []
    problems: list[Problem] = []

    @property
    def ok(self) -> bool:
        return not self.drifts and not self.problems


def differences(ref: AccountRef, snapshot: Account, folded: Account) -> list[Drift]:
    """Every top-level field (and each wallet) where the snapshot and the fold from zero disagree."""
    drifts: list[Drift] = []
    left, right = msgspec.to_builtins(snapshot), msgspec.to_builtins(folded)
    for name in sorted(set(left) | set(right)):
        if name == "wallets":
            continue
        if left.get(name) != right.get(name):
            drifts.append(Drift(ref, name, repr(left.get(name)), repr(right.get(name))))
    wallets_left, wallets_right = left.get("wallets", {}), right.get("wallets", {})
    for wallet_id in sorted(set(wallets_left) | set(wallets_right)):
        a, b = wallets_left.get(wallet_id), wallets_right.get(wallet_id)
        if a == b:
            continue
        fields = sorted(set(a or {}) | set(b or {}))
        for field in fields:
            if (a or {}).get(field) != (b or {}).get(field):
                drifts.append(Drift(ref, f"wallets.{wallet_id}.{field}", repr((a or {}).get(field)),
                                    repr((b or {}).get(field))))
    return drifts


async def verify_accounts(store: EventStore, projection: Projection, refs: Iterable[AccountRef]) -> VerifyReport:
    """Compare each account's snapshot with a fold of its whole stream up to the snapshot's position.

    An account whose stream goes past its snapshot is listed as behind (not a drift): the projector has not
    caught up with it yet, and the part it has folded is still compared. An account that is quarantined, whose
    snapshot cannot be read or whose stream cannot be folded is a problem (as a drift is: verify fails).
    """
    report = VerifyReport()
    for ref in refs:
        report.accounts += 1
        try:
            entries = await store.read_raw_log(ref)
            raw, ledger = await load_with_snapshot(projection.redis, projection.keys, ref)
        except ResponseError as exc:  # e.g. WRONGTYPE: one of its keys holds something else
            report.problems.append(Problem(ref, f"it cannot be read: {exc}"))
            continue
        report.events += len(entries)
        p, s, q = raw
        snapshot = Snapshot(text(p) if p else ORIGIN, s, text(q) if q else None)
        problem = compare(report, ref, snapshot, entries, store.rate_cards, ledger, projection.ledger_keep)
        if problem is not None:
            report.problems.append(Problem(ref, problem))
    return report


def compare(
    report: VerifyReport, ref: AccountRef, snapshot: Snapshot, entries: Sequence[LogEntry], cards: RateCards,
    ledger: StoredLedger | None = None, keep: int = DEFAULT_KEEP,
) -> str | None:
    """Add the account's drifts (and whether it is behind) to the report; returns what stops a comparison. The
    stored ledger, when given, is compared entry by entry with the part Redis keeps (`keep` per wallet) of the
    one the fold from zero wrote: an entry that left Redis is not a drift."""
    if snapshot.quarantined is not None:
        return f"quarantined: {snapshot.quarantined}"
    try:
        account = decode_account(snapshot.state) if snapshot.state else EMPTY_ACCOUNT
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return f"its snapshot cannot be read: {exc}"
    folded_part = [e for e in entries if not is_after(e.position, account.position)]
    if len(folded_part) < len(entries):
        report.behind.append(ref)
    fold = fold_log(EMPTY_ACCOUNT, folded_part, cards)
    if fold.failed is None:
        report.drifts.extend(differences(ref, account, fold.account))
        if ledger is not None:
            found = ledger_differences(ledger, fold.ledger, fold.account, keep)
            report.drifts.extend(Drift(ref, *difference) for difference in found)
        fold = fold_log(fold.account, entries[len(folded_part):], cards)
    if fold.failed is not None:
        return f"entry {fold.failed.position} cannot be folded: {fold.reason}"
    return None


async def verify_all(store: EventStore, projection: Projection) -> VerifyReport:
    refs: list[AccountRef] = []
    for partition in range(store.keys.partitions):
        refs.extend(await store.accounts(partition))
    return await verify_accounts(store, projection, refs)


