"""One archive segment: the schema (stable, documented in the README), and stream entries to and from Parquet."""

import functools
import io
import itertools
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.events import AnyEvent, CreditsDebited, CreditsGranted, InvoicePaid, UsageRecorded, WalletCreated
from domain.identity import AccountRef
from domain.pricing import charge, in_force, quantity_of
from store.entries import LogEntry, decode_entry
from store.positions import parse
from store.ratecard import RateCards

SCHEMA = pa.schema([
    pa.field("tenant", pa.string(), nullable=False),
    pa.field("environment", pa.string(), nullable=False),
    pa.field("customer", pa.string(), nullable=False),
    pa.field("position", pa.string(), nullable=False),
    pa.field("position_ms", pa.int64(), nullable=False),
    pa.field("position_seq", pa.int64(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("event", pa.binary(), nullable=False),
    pa.field("rate_card", pa.binary()),
    pa.field("event_name", pa.string()),
    pa.field("quantity", pa.string()),
    pa.field("amount", pa.string()),
    pa.field("currency", pa.string()),
])
ROW_GROUP = 64 * 1024


class ArchivedEntry(msgspec.Struct, frozen=True):
    ref: AccountRef
    entry: LogEntry


class QueryFields(msgspec.Struct, frozen=True):
    """The decoded columns people query; None where an event kind has no such field."""

    event_name: str | None = None
    quantity: Decimal | None = None
    amount: Decimal | None = None
    currency: str | None = None


def query_fields(event: AnyEvent) -> QueryFields:
    """Usage: its quantity under the first price in force at its timestamp, that price's charge for it alone and
    its currency. Grants and debits: the credits. A wallet's creation: its currency. An invoice paid: its amount."""
    match event:
        case UsageRecorded():
            prices = in_force(event.prices, event.event_name, event.timestamp)
            quantity = quantity_of(prices[0], event.properties) if prices else None
            if quantity is None:
                return QueryFields(event.event_name)
            return QueryFields(event.event_name, quantity, charge(prices[0], quantity), prices[0].currency)
        case CreditsGranted() | CreditsDebited():
            return QueryFields(quantity=event.credits)
        case WalletCreated():
            return QueryFields(currency=event.currency)
        case InvoicePaid():
            return QueryFields(amount=event.amount)
    return QueryFields()


def _time(event: AnyEvent) -> datetime:
    return event.timestamp if isinstance(event, UsageRecorded) else event.at


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def encode_segment(rows: Sequence[ArchivedEntry], cards: RateCards) -> bytes:
    """Parquet bytes (zstd) of the rows, in the order given (accounts sorted, each account's entries in order);
    `cards` holds the rate cards their usage entries name."""
    columns: dict[str, list[object]] = {field.name: [] for field in SCHEMA}
    for row in rows:
        event = decode_entry(row.entry.payload, row.entry.rates, cards)
        ms, seq = parse(row.entry.position)
        fields = query_fields(event)
        values = (row.ref.tenant_id, row.ref.environment_id, row.ref.customer_id, row.entry.position, ms, seq,
                  type(event).__struct_config__.tag, _time(event), event.id, row.entry.payload, row.entry.rates,
                  fields.event_name, _text(fields.quantity), _text(fields.amount), fields.currency)
        for name, value in zip(columns, values, strict=True):
            columns[name].append(value)
    table = pa.Table.from_pydict(columns, schema=SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP)
    return sink.getvalue()


_LOG_COLUMNS = ["tenant", "environment", "customer", "position", "event", "rate_card"]


def decode_segment_groups(data: bytes) -> dict[AccountRef, list[LogEntry]]:
    """The entries of a segment per account, in file order. Rows come in runs of one account (the archiver sorts
    them), so the account columns are compared column-wise to find where runs start, and only each run's first row
    is turned into an AccountRef (a run of an account seen before is appended to its entries)."""
    table = pq.read_table(pa.BufferReader(data), columns=_LOG_COLUMNS)
    starts = _run_starts(table)
    positions, payloads, rates = (table.column(name).to_pylist() for name in ("position", "event", "rate_card"))
    accounts = [table.column(name).take(pa.array(starts, pa.int64())).to_pylist()
                for name in ("tenant", "environment", "customer")]
    groups: dict[AccountRef, list[LogEntry]] = {}
    for run, (start, end) in enumerate(itertools.pairwise([*starts, table.num_rows])):
        entries = groups.setdefault(AccountRef(accounts[0][run], accounts[1][run], accounts[2][run]), [])
        entries.extend(map(LogEntry, positions[start:end], payloads[start:end], rates[start:end]))
    return groups


def _run_starts(table: pa.Table) -> list[int]:
    """The rows where the account differs from the row before (row 0 included when there are rows)."""
    if table.num_rows == 0:
        return []
    columns = [table.column(name).combine_chunks() for name in ("tenant", "environment", "customer")]
    changed = functools.reduce(pc.or_, [pc.not_equal(c.slice(1), c.slice(0, len(c) - 1)) for c in columns])
    return [0, *(index + 1 for index in pc.indices_nonzero(changed).to_pylist())]


def decode_segment(data: bytes, customer: AccountRef | None = None) -> list[ArchivedEntry]:
    """The rows of a segment (only one account's, if given), in file order."""
    columns = _LOG_COLUMNS
    filters = None
    if customer is not None:
        filters = [("tenant", "=", customer.tenant_id), ("environment", "=", customer.environment_id),
                   ("customer", "=", customer.customer_id)]
    table = pq.read_table(pa.BufferReader(data), columns=columns, filters=filters)
    values = table.to_pydict()
    return [ArchivedEntry(AccountRef(t, e, c), LogEntry(p, payload, rates))
            for t, e, c, p, payload, rates in zip(*(values[name] for name in columns), strict=True)]
