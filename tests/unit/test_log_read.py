"""A page of a customer stream read as the server sends it (each entry's fields a flat list) gives the entries
redis-py's parsed page gives (its own XRANGE response callback builds that one here)."""

import pytest
from redis._parsers.helpers import parse_stream_list

from store.entries import LogEntry
from store.log_read import log_entries

FLAT_CASES = [
    [b"e", b"\x01usage", b"r", b"digest"],  # usage, as the append scripts write it
    [b"e", b"\x02grant"],  # no rate card
    [b"e", b""],
    [b"r", b"digest", b"e", b"\x01usage"],  # another order
    [b"r", b"digest"],  # no payload: an empty one, which the fold quarantines
    [b"e", b"x", b"r", b"d", b"extra", b"1"],
    [b"extra", b"1", b"e", b"x"],
    [b"e", b"x", b"e", b"y"],  # a name twice: the last counts
    [b"e", b"x", b"r", b"d", b"r", b"d2"],
    [b"E", b"x", b"R", b"d"],  # names are bytes, compared exactly
    [],
]


@pytest.mark.parametrize("flat", FLAT_CASES)
def test_an_entry_as_sent_reads_as_its_parsed_form(flat: list[bytes]) -> None:
    page = [[b"1700000000000-7", flat]]
    assert log_entries(page) == log_entries(parse_stream_list(page))


def test_a_page_as_sent_reads_entry_by_entry_in_order() -> None:
    page = [[f"1700000000000-{n}".encode(), flat] for n, flat in enumerate(FLAT_CASES)]
    as_sent = log_entries(page)
    assert as_sent == log_entries(parse_stream_list(page))
    assert as_sent[:5] == [
        LogEntry("1700000000000-0", b"\x01usage", b"digest"), LogEntry("1700000000000-1", b"\x02grant"),
        LogEntry("1700000000000-2", b""), LogEntry("1700000000000-3", b"\x01usage", b"digest"),
        LogEntry("1700000000000-4", b"", b"digest")]
    assert [e.payload for e in as_sent[7:]] == [b"y", b"x", b"", b""] and as_sent[8].rates == b"d2"
