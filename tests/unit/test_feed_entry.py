"""A feed entry's fields read as the server sends them (a flat list) give what redis-py's parsed dict gives."""

import pytest

from domain.codec import encode_ref
from domain.identity import AccountRef
from store.projection import _feed_entry

REF = encode_ref(AccountRef("acme", "live", "cust-1"))
FLAT_CASES = [
    [b"c", REF, b"l", b"1700000000000-0", b"e", b"\x01payload", b"r", b"digest", b"pl", b"0-0"],
    [b"c", REF, b"l", b"1700000000000-3", b"e", b"\x01payload", b"pl", b"1699999999999-0"],
    [b"c", REF, b"l", b"1700000000000-0", b"e", b"", b"pl", b""],
    [b"l", b"1700000000000-0", b"c", REF, b"e", b"x", b"pl", b"0-0"],  # another order
    [b"c", REF, b"l", b"1700000000000-0", b"e", b"x"],  # written before feeds carried `pl`
    [b"c", REF, b"l", b"1700000000000-0", b"e", b"x", b"r", b"d", b"pl", b"0-0", b"extra", b"1"],
    [b"c", REF, b"l", b"1700000000000-0", b"e", b"x", b"pl", b"0-0", b"c", REF],  # a name twice: the last counts
    [b"c", b"not an encoded ref", b"l", b"1-0", b"e", b"x", b"pl", b"0-0"],
    [b"c", REF, b"l", b"\xff\xfe", b"e", b"x", b"r", b"d", b"pl", b"0-0"],  # a position that is not UTF-8
    [b"l", b"1-0", b"e", b"x", b"pl", b"0-0"],  # no account
    [b"garbage", b"fields"],
    [],
]


@pytest.mark.parametrize("flat", FLAT_CASES)
def test_a_flat_entry_reads_as_its_parsed_dict(flat: list[bytes]) -> None:
    parsed = dict(zip(flat[::2], flat[1::2], strict=True))
    assert _feed_entry("1700000000000-7", flat) == _feed_entry("1700000000000-7", parsed)


def test_a_previous_position_that_is_not_utf8_is_a_broken_entry_alike() -> None:
    """It halts the partition with its reason (as an unreadable account or position does), rather than raising out
    of every read of the feed."""
    flat = [b"c", REF, b"l", b"1-0", b"e", b"x", b"pl", b"\xff"]
    read = _feed_entry("1-1", flat)
    assert read.broken is not None and "UnicodeDecodeError" in read.broken
    assert read == _feed_entry("1-1", dict(zip(flat[::2], flat[1::2], strict=True)))
