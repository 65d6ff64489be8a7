"""The balance memo answers with the bytes it holds only for the very read they came from and inside their span."""

import gc
import weakref
from datetime import UTC, datetime, timedelta

from api.balance_memo import BalanceMemo
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT
from store.eventstore import AccountRead

T = datetime(2026, 1, 1, tzinfo=UTC)
KEY = (AccountRef("t", "e", "c"), "w", False, False)


def read() -> AccountRead:
    return AccountRead(account=EMPTY_ACCOUNT, snapshot_position="0-0", folded_at="", tail=0)


def test_bytes_are_reused_for_the_same_read_inside_their_span() -> None:
    memo, first, calls = BalanceMemo(), read(), []

    def encode() -> tuple[bytes, datetime | None, datetime | None]:
        calls.append(1)
        return f"body{len(calls)}".encode(), T, T + timedelta(hours=1)

    assert memo.body(KEY, first, T, encode) == b"body1"
    assert memo.body(KEY, first, T + timedelta(minutes=59), encode) == b"body1"
    assert memo.body(KEY, first, T + timedelta(hours=1), encode) == b"body2"  # past the span
    assert memo.body(KEY, first, T - timedelta(seconds=1), encode) == b"body3"  # before it
    assert memo.body(KEY, read(), T, encode) == b"body4"  # an equal read, but another one
    assert memo.body((*KEY[:3], True), first, T, encode) == b"body5"  # another mode


def test_it_holds_at_most_its_limit() -> None:
    memo = BalanceMemo(limit=2)
    for wallet in "abc":
        memo.body((KEY[0], wallet, False, False), read(), T, lambda: (b"x", None, None))
    assert len(memo) == 2


def test_a_held_body_does_not_keep_its_read_alive() -> None:
    memo, held = BalanceMemo(), read()
    watch = weakref.ref(held)
    memo.body(KEY, held, T, lambda: (b"x", None, None))
    del held
    gc.collect()
    assert watch() is None and len(memo) == 1
