"""Operator actions on a quarantined account: retry (refold it) and drop (remove its bad entry, then refold).

Retry refolds the account from its snapshot and its customer stream (from zero when the snapshot itself cannot be
read). If everything folds, one script writes the snapshot, its clock schedule and the notices the refold caused,
and clears the quarantine, only if neither the stream nor the snapshot moved since they were read (else it reads
again). The live projector never writes a quarantined account's snapshot and never moves one backwards, so it
cannot overwrite the operator's; once released, it skips entries the refold covered (their positions are at or
before the snapshot's). If an entry still fails, the record is updated and the account stays quarantined.
"""

from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from domain.clock import next_due
from domain.codec import decode_account, encode_account
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT, Account
from domain.timefmt import format_rfc3339
from projector.batch import AccountFold, fold_entries
from store.eventstore import EventStore
from store.ledger import bound_ledger, removals
from store.letters import DeadLetter
from store.positions import ORIGIN, is_after
from store.projection import FeedEntry, Projection, Snapshot
from store.quarantine import MOVED, NOT_QUARANTINED, Quarantines
from store.ratecard import RateCards

ATTEMPTS = 20
Verdict = Literal["released", "still failing", "not quarantined", "gap: retry instead", "moved: try again"]


class Outcome(msgspec.Struct, frozen=True):
    verdict: Verdict
    letter: DeadLetter | None = None
    position: str = ""


class Operator:
    """Retry and drop, for the live generation's store objects."""

    def __init__(self, store: EventStore, projection: Projection, grace: timedelta) -> None:
        self.store = store
        self.projection = projection
        self.quarantines = Quarantines(store.redis, projection.keys)
        self.grace = grace

    async def retry(self, ref: AccountRef) -> Outcome:
        for _ in range(ATTEMPTS):
            snapshot = (await self.projection.load_snapshots([ref]))[0]
            if snapshot.quarantined is None:
                return Outcome("not quarantined")
            last = await self.store.last_position(ref)
            start, account = _start(snapshot)
            entries = await self.store.read_raw_log(ref, after=start)
            feed_like = [FeedEntry("", ref, e.position, e.payload, e.rates) for e in entries]
            result = _refold(ref, account, feed_like, snapshot.position, self.store.rate_cards)
            if result.failure is not None:
                return Outcome("still failing", await self._still_failing(ref, result.failure))
            code = await self._release(ref, last, snapshot.position, account, result)
            if code == NOT_QUARANTINED:
                return Outcome("not quarantined")
            if code != MOVED:
                return Outcome("released", position=result.account.position)
        return Outcome("moved: try again")

    async def drop(self, ref: AccountRef, operator: str) -> Outcome:
        """Record the quarantined entry on the operations stream, remove it from the streams, then retry."""
        letter = await self.quarantines.get(ref)
        if letter is None:
            return Outcome("not quarantined")
        if letter.kind == "gap":
            return Outcome("gap: retry instead", letter)
        if not await self.quarantines.drop_entry(letter, operator):
            return Outcome("moved: try again", letter)
        outcome = await self.retry(ref)
        return msgspec.structs.replace(outcome, letter=outcome.letter or letter)

    async def _release(self, ref: AccountRef, last: str, snapshot_at: str, before: Account,
                       result: AccountFold) -> int:
        due = next_due(result.account, self.grace)
        keep = self.projection.ledger_keep
        ledger, trims = bound_ledger(before, result.account, result.ledger, keep)
        removed = (await removals(self.store.redis, self.projection.keys, [(ref, trims)]))[0]
        return await self.quarantines.release(
            ref, last, snapshot_at, result.account.position, encode_account(result.account),
            format_rfc3339(datetime.now(UTC)), None if due is None else int(due.timestamp() * 1000), result.notices,
            ledger, removed,
        )

    async def _still_failing(self, ref: AccountRef, failure: DeadLetter) -> DeadLetter:
        """Keep the record (updated) when the same entry fails again; a later entry gets a record of its own."""
        known = await self.quarantines.get(ref)
        letter = failure
        if known is not None and known.log_position == failure.log_position and known.kind == failure.kind:
            letter = msgspec.structs.replace(known, reason=failure.reason, at_ms=failure.at_ms)
        await self.quarantines.record(letter)
        return letter


def _refold(ref: AccountRef, account: Account, entries: list[FeedEntry], snapshot_at: str,
            cards: RateCards) -> AccountFold:
    """Fold `entries`, with notices only for those after `snapshot_at`: the fold that wrote the snapshot emitted
    the earlier ones, and their emitted keys may be gone with retention (README: Retention). Only a refold from
    zero (an unreadable snapshot) has such entries."""
    done = [e for e in entries if not is_after(e.log_position, snapshot_at)]
    before = fold_entries(ref, account, done, cards)
    if before.failure is not None:
        return before
    return fold_entries(ref, before.account, entries[len(done):], cards)


def _start(snapshot: Snapshot) -> tuple[str, Account]:
    """Where to refold from: the snapshot, or zero when the snapshot itself cannot be read."""
    try:
        account = decode_account(snapshot.state) if snapshot.state else EMPTY_ACCOUNT
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ORIGIN, EMPTY_ACCOUNT
    return account.position, account
