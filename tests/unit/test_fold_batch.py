"""projector.batch.fold_batch without Redis: one account's bad entry quarantines it alone, at its last good position;
a missing predecessor is a gap; entries without a predecessor field (written before feeds carried it) still fold."""

from datetime import timedelta
from decimal import Decimal

import msgspec
from redis.asyncio import Redis

from domain.codec import decode_account, encode_event
from domain.events import AnyEvent
from domain.identity import AccountRef
from projector.batch import Folded, fold_batch, group_by_account
from store.keys import Keys
from store.projection import FeedEntry, Snapshot
from store.ratecard import RateCards
from tests.unit.given import created, granted

GRACE = timedelta(hours=1)
ALICE, BOB = AccountRef("t", "e", "alice"), AccountRef("t", "e", "bob")


def entry(n: int, ref: AccountRef, event: AnyEvent | bytes, previous: str | None = None) -> FeedEntry:
    payload = event if isinstance(event, bytes) else encode_event(event)
    return FeedEntry(f"{n}-0", ref, f"{n}-0", payload, previous=previous)


def nan_grant() -> AnyEvent:
    return msgspec.structs.replace(granted("bad", "1"), credits=Decimal("NaN"))


def fold(entries: list[FeedEntry], snapshots: dict[AccountRef, Snapshot] | None = None) -> Folded:
    groups = group_by_account(entries)
    known = snapshots or {}
    cards = RateCards(Redis(), Keys())  # never asked: no usage entry here (nothing connects until a command)
    return fold_batch(groups, [known.get(ref, Snapshot("0-0", None)) for ref in groups], GRACE, cards)


def test_a_bad_entry_quarantines_its_account_at_the_last_good_position_and_the_neighbour_folds() -> None:
    folded = fold([entry(1, ALICE, created(), "0-0"), entry(2, BOB, created(), "0-0"),
                   entry(3, ALICE, granted("t1", "5"), "1-0"), entry(4, ALICE, b"\xc1 garbage", "3-0"),
                   entry(5, BOB, granted("t2", "7"), "2-0"), entry(6, ALICE, granted("t3", "1"), "4-0")])
    (quarantine,) = folded.quarantines
    (bob,) = folded.writes
    assert (quarantine.letter.ref, quarantine.letter.kind, quarantine.letter.log_position) == (ALICE, "fold", "4-0")
    assert quarantine.letter.raw == b"\xc1 garbage" and quarantine.letter.feed_position == "4-0"
    assert quarantine.position == "3-0" and quarantine.state and decode_account(quarantine.state).applied == 2
    assert (bob.ref, bob.position) == (BOB, "5-0")
    assert folded.applied == 4


def test_an_event_whose_fold_raises_quarantines_its_account() -> None:
    folded = fold([entry(1, ALICE, created(), "0-0"), entry(2, ALICE, nan_grant(), "1-0")])
    (quarantine,) = folded.quarantines
    assert quarantine.letter.kind == "fold" and "InvalidOperation" in quarantine.letter.reason
    assert quarantine.position == "1-0"


def test_a_missing_predecessor_is_a_gap_not_a_skip() -> None:
    folded = fold([entry(1, ALICE, created(), "0-0"), entry(3, ALICE, granted("t1", "5"), "2-0")])
    (quarantine,) = folded.quarantines
    assert (quarantine.letter.kind, quarantine.letter.log_position, quarantine.position) == ("gap", "3-0", "1-0")


def test_entries_without_a_predecessor_field_still_fold_and_redeliveries_are_no_ops() -> None:
    first = fold([entry(1, ALICE, created()), entry(2, ALICE, granted("t1", "5"))])
    (write,) = first.writes
    again = fold([entry(2, ALICE, granted("t1", "5"), "1-0"), entry(3, ALICE, granted("t2", "1"), "2-0")],
                 {ALICE: Snapshot(write.position, write.state)})
    (later,) = again.writes
    assert not first.quarantines and not again.quarantines
    assert (later.position, decode_account(later.state).applied) == ("3-0", 3)


def test_a_quarantined_account_is_left_to_the_operator() -> None:
    folded = fold([entry(5, ALICE, granted("t1", "5"), "4-0")], {ALICE: Snapshot("4-0", None, "fold at 4-0: bad")})
    assert (folded.writes, folded.quarantines, folded.applied) == ([], [], 0)
