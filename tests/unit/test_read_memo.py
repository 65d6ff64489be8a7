"""The read memo answers a reply equal in full to the one it holds with what that reply folded to, and folds again
on any difference; it is bounded and keeps each account's modes apart."""

from collections.abc import Sequence
from typing import Any

from domain.identity import AccountRef
from store.read_memo import LARGEST, ReadMemo

A, B = AccountRef("t", "e", "a"), AccountRef("t", "e", "b")


def reply(state: bytes = b"s1", tail: list[Any] | None = None, position: bytes = b"1-0") -> list[Any]:
    return [position, state, b"1700000000000", tail or [], [], None]


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, raw: Sequence[Any]) -> tuple[int, Sequence[Any]]:
        self.calls += 1
        return self.calls, raw


def test_an_equal_reply_is_answered_without_folding() -> None:
    memo: ReadMemo[tuple[int, Sequence[Any]]] = ReadMemo()
    fold = Counting()
    first = memo.read(A, False, reply(), fold)
    assert memo.read(A, False, reply(), fold) is first and fold.calls == 1


def test_any_difference_folds_again() -> None:
    memo: ReadMemo[tuple[int, Sequence[Any]]] = ReadMemo()
    fold = Counting()
    memo.read(A, False, reply(), fold)
    changed = [reply(state=b"s2"), reply(position=b"2-0"), reply(tail=[[b"2-0", [b"e", b"x"]]]),
               reply(tail=[[b"2-0", [b"e", b"y"]]]), [*reply()[:5], b"quarantined"]]
    for number, raw in enumerate(changed, start=2):
        assert memo.read(A, False, raw, fold) == (number, raw)


def test_accounts_and_modes_are_held_apart() -> None:
    memo: ReadMemo[tuple[int, Sequence[Any]]] = ReadMemo()
    fold = Counting()
    memo.read(A, False, reply(), fold)
    assert memo.read(B, False, reply(), fold)[0] == 2
    assert memo.read(A, True, reply(), fold)[0] == 3
    assert memo.read(A, False, reply(), fold)[0] == 1 and fold.calls == 3


def test_it_holds_at_most_its_limit_and_no_large_snapshot() -> None:
    memo: ReadMemo[tuple[int, Sequence[Any]]] = ReadMemo(limit=2)
    fold = Counting()
    for customer in "abc":
        memo.read(AccountRef("t", "e", customer), False, reply(), fold)
    assert len(memo) == 2
    assert memo.read(AccountRef("t", "e", "a"), False, reply(), fold)[0] == 4  # the longest held went first
    memo.read(B, True, reply(state=b"x" * (LARGEST + 1)), fold)
    assert fold.calls == 5 and memo.read(B, True, reply(state=b"x" * (LARGEST + 1)), fold)[0] == 6


def test_it_holds_at_most_its_budget_of_snapshot_bytes() -> None:
    memo: ReadMemo[tuple[int, Sequence[Any]]] = ReadMemo(budget=10)
    fold = Counting()
    memo.read(A, False, reply(state=b"x" * 6), fold)
    memo.read(B, False, reply(state=b"y" * 6), fold)  # over the budget: A goes
    assert len(memo) == 1 and memo.held_bytes == 6
    memo.read(B, False, reply(state=b"z" * 4), fold)  # B's new reply replaces its old one
    assert len(memo) == 1 and memo.held_bytes == 4
    assert memo.read(A, False, reply(state=b"x" * 6), fold)[0] == 4 and memo.held_bytes == 10
