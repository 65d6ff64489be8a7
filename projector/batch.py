"""Fold one batch of feed entries into the snapshots of the accounts it touches."""

from collections.abc import Sequence
from datetime import timedelta

from domain.clock import next_due
from domain.codec import decode_account, encode_account
from domain.fold import advance
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT
from store.entries import decode_entry
from store.positions import is_after
from store.projection import FeedEntry, Snapshot, SnapshotWrite


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


def fold_batch(
    groups: dict[AccountRef, list[FeedEntry]], snapshots: Sequence[Snapshot], grace: timedelta
) -> tuple[list[SnapshotWrite], int]:
    """New snapshots for the accounts that changed, and how many events were applied.

    An entry at or before its snapshot's position was applied already (a redelivery) and changes nothing.
    """
    writes: list[SnapshotWrite] = []
    applied = 0
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
            account = advance(account, entry.log_position, event)
        if account.applied != before:
            applied += account.applied - before
            due = next_due(account, grace)
            due_ms = None if due is None else int(due.timestamp() * 1000)
            writes.append(SnapshotWrite(ref, account.position, encode_account(account), due_ms))
    return writes, applied
