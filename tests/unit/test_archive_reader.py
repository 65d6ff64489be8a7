"""The archive reader's choice of preloaded entries: only what lies after the reader's position, within the
account's archived span and before the stream's first entry; a repeated or misordered entry is named, not used.
A segment read per account (a replay's preload) holds exactly what was written, in file order."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from domain.codec import encode_event
from domain.events import CreditsGranted
from domain.identity import AccountRef
from store.archive.manifest import Span
from store.archive.reader import ArchiveBroken, ArchiveReader, Preload
from store.archive.segments import ArchivedEntry, decode_segment, decode_segment_groups, encode_segment
from store.entries import LogEntry
from store.keys import Keys
from store.ratecard import RateCards

KEYS = Keys(4)
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
REF = AccountRef("t", "e", "c")


def reader_with(positions: list[str], span: Span) -> ArchiveReader:
    reader = ArchiveReader(Redis(port=1), KEYS)  # preloaded: this client never connects
    entries = [LogEntry(position, b"") for position in positions]
    reader.preloaded[KEYS.partition_of(REF)] = Preload({REF: span}, {REF: entries})
    return reader


POSITIONS = ["5-0", "5-1", "9-0", "10-0", "100-3"]


@pytest.mark.parametrize(
    ("after", "first_live", "through", "expected"),
    [
        ("0-0", None, "100-3", POSITIONS),
        ("5-0", None, "100-3", ["5-1", "9-0", "10-0", "100-3"]),  # after is exclusive
        ("0-0", None, "10-0", ["5-0", "5-1", "9-0", "10-0"]),  # through is inclusive
        ("0-0", "9-0", "100-3", ["5-0", "5-1"]),  # what the stream still holds is not taken twice
        ("9-5", "100-3", "100-3", ["10-0"]),
        ("100-3", None, "100-3", []),  # nothing after the reader's position
        ("0-0", "5-0", "100-3", []),  # the stream holds everything archived
    ],
)
async def test_the_reader_takes_exactly_the_entries_only_the_archive_holds(
    after: str, first_live: str | None, through: str, expected: list[str],
) -> None:
    reader = reader_with(POSITIONS, Span("5-0", through))
    chosen = await reader.before(REF, after, first_live, Span("5-0", through).encode())
    assert [entry.position for entry in chosen] == expected


@pytest.mark.parametrize("positions", [["5-0", "9-0", "9-0"], ["5-0", "10-0", "9-0"], ["10-0", "5-0"]])
async def test_a_repeated_or_misordered_archived_entry_is_named(positions: list[str]) -> None:
    reader = reader_with(positions, Span("5-0", "10-0"))
    with pytest.raises(ArchiveBroken, match=r"t/e/c holds .* a segment repeats or misorders it"):
        await reader.before(REF, "0-0", None, Span("5-0", "10-0").encode())


def grant_entry(position: str, n: int) -> LogEntry:
    event = CreditsGranted(id=f"g{n}", at=AT, wallet_id="w", transaction_id=f"t{n}", credits=Decimal(n),
                           reason="PURCHASED_CREDIT_DIRECT")
    return LogEntry(position, encode_event(event))


@pytest.mark.parametrize("order", [
    ["a", "a", "b", "c", "c", "c"],
    ["a", "b", "a"],  # an account in two runs: its entries are joined in file order
    ["c"],
    [],
])
def test_a_segment_read_per_account_holds_what_was_written_in_file_order(order: list[str]) -> None:
    rows = [ArchivedEntry(AccountRef("t", "e", name), grant_entry(f"{n + 1}-0", n + 1))
            for n, name in enumerate(order)]
    groups = decode_segment_groups(encode_segment(rows, RateCards(Redis(), Keys())))
    expected: dict[AccountRef, list[LogEntry]] = {}
    for row in rows:
        expected.setdefault(row.ref, []).append(row.entry)
    assert groups == expected
    assert [row.entry for row in decode_segment(encode_segment(rows, RateCards(Redis(), Keys())))] == [
        row.entry for row in rows]
