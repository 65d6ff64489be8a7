"""The codec: every event and an account survive MessagePack exactly, and encode to the same bytes every time;
events and ledger entries a store wrote in the older map encoding read the same."""

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import get_args

import msgspec
import pytest

from domain.codec import (
    decode_account,
    decode_event,
    decode_ledger_entry,
    decode_ref,
    encode_account,
    encode_event,
    encode_ledger_entry,
    encode_ref,
)
from domain.events import (
    AnyEvent,
    BillingCycleSet,
    CreditsDebited,
    CreditsExpired,
    CreditsGranted,
    CreditsPaid,
    InvoicePaid,
    PeriodClosed,
    UsageRecorded,
    WalletCreated,
    WalletFrozen,
    WalletTerminated,
    WalletUnfrozen,
    WalletUpdated,
)
from domain.identity import AccountRef
from domain.pricing import PriceVersion, Tier
from domain.settings import AlertSettings, AlertThreshold, AutoTopup
from tests.unit.given import after, created, debited, expired, frozen, given, granted, ledger_of, terminated

D = Decimal
AT = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
ALERTS = AlertSettings(
    alert_enabled=True,
    critical=AlertThreshold(threshold=D("10.50"), condition="below"),
    warning=AlertThreshold(threshold=D("20"), condition="below"),
    info=AlertThreshold(threshold=D("3E+1"), condition="below"),
)
PRICE = PriceVersion(
    id="p1", lookup_key="api", event_name="api_call", currency="USD", aggregation="SUM", field="tokens",
    filters={"model": ("gpt", "o1")}, billing_model="TIERED", tier_mode="VOLUME",
    tiers=(
        Tier(up_to=D("1000"), unit_amount=D("0.002")),
        Tier(up_to=None, unit_amount=D("0.0015"), flat_amount=D("1")),
    ),
    effective_from=AT - timedelta(days=60), created_at=AT - timedelta(days=61),
)
TOPUP = AutoTopup(enabled=True, threshold=D("5"), amount=D("100.000"), invoicing=True, cooldown_seconds=600)

SAMPLES: list[AnyEvent] = [
    WalletCreated(
        id="e1", at=AT, wallet_id="w1", tenant_id="t1", environment_id="env1", customer_id="c1", currency="USD",
        wallet_type="POST_PAID", conversion_rate=D("0.0125"), topup_conversion_rate=D("1.10"),
        allowed_price_types=("USAGE", "FIXED"), alert_settings=ALERTS, auto_topup=TOPUP, name="main",
        description="ünïcode ✓", metadata={"b": "2", "a": "1"}, created_by="api",
    ),
    WalletUpdated(
        id="e2", at=AT, wallet_id="w1", name="renamed", description=None, metadata={"k": "v"},
        alert_settings=AlertSettings(), auto_topup=AutoTopup(), allowed_price_types=("ALL",), updated_by="ops",
    ),
    WalletTerminated(id="e3", at=AT, wallet_id="w1", transaction_id="t3", updated_by="ops"),
    WalletFrozen(id="e4", at=AT, wallet_id="w1", updated_by="ops"),
    WalletUnfrozen(id="e5", at=AT, wallet_id="w1", updated_by="ops"),
    CreditsGranted(
        id="e6", at=AT, wallet_id="w1", transaction_id="t6", credits=D("0.000000000001"),
        reason="SUBSCRIPTION_CREDIT_GRANT", priority=-3, expires_at=AT + timedelta(days=400),
        idempotency_key="idem-6", description="lot", metadata={"plan": "pro"}, created_by="api",
    ),
    CreditsDebited(
        id="e7", at=AT, wallet_id="w1", transaction_id="t7", credits=D("12345678901234567890.12345678"),
        reason="WALLET_TERMINATION", idempotency_key="idem-7", description="x", metadata={}, created_by="api",
    ),
    CreditsExpired(id="e8", at=AT, wallet_id="w1", lot_id="t6", transaction_id="t8"),
    CreditsPaid(id="e8b", at=AT, wallet_id="w1", transaction_id="t6"),
    UsageRecorded(
        id="e9", at=AT, event_name="api_call", external_customer_id="ext-1", timestamp=AT - timedelta(seconds=1),
        properties={"tokens": 1234567890123, "ratio": 0.1, "model": "gpt", "neg": -1}, source="sdk",
        prices=(PRICE,),
    ),
    BillingCycleSet(id="e10", at=AT, anchor=AT - timedelta(days=3), unit="day", count=7),
    PeriodClosed(id="e11", at=AT, period_start=AT - timedelta(days=7), period_end=AT),
    InvoicePaid(id="e12", at=AT, invoice_id="inv-1", amount=D("12.340"), reference="wire 42"),
]
USAGE = next(event for event in SAMPLES if isinstance(event, UsageRecorded))


def test_the_samples_cover_every_event_type() -> None:
    assert {type(event) for event in SAMPLES} == set(get_args(AnyEvent))


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_round_trips_exactly(event: AnyEvent) -> None:
    data = encode_event(event)
    decoded = decode_event(data)
    assert type(decoded) is type(event)
    assert decoded == event
    assert encode_event(decoded) == data
    assert msgspec.to_builtins(decoded) == msgspec.to_builtins(event)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_encoding_an_event_is_deterministic(event: AnyEvent) -> None:
    assert encode_event(event) == encode_event(event)
    assert encode_event(event) == encode_event(msgspec.structs.replace(event))


def test_decimals_keep_their_exact_digits() -> None:
    grant = granted("g", "0.10")
    decoded = decode_event(encode_event(grant))
    assert isinstance(decoded, CreditsGranted)
    assert str(decoded.credits) == "0.10"
    created_back = decode_event(encode_event(SAMPLES[0]))
    assert isinstance(created_back, WalletCreated) and created_back.alert_settings is not None
    info = created_back.alert_settings.info
    assert info is not None and str(info.threshold) == "3E+1"


def test_timestamps_keep_microseconds_and_the_instant_of_any_offset() -> None:
    plus_two = timezone(timedelta(hours=2))
    event = granted("g", "1", at=datetime(2025, 6, 1, 12, 0, 0, 1, tzinfo=plus_two))
    decoded = decode_event(encode_event(event))
    assert decoded.at == event.at
    assert decoded.at.microsecond == 1
    assert decoded.at.utcoffset() == timedelta(0)


def history() -> list[AnyEvent]:
    return [
        created("w1", alerts=ALERTS, rate="2.5"),
        created("w2", currency="EUR", wallet_type="POST_PAID"),
        granted("a", "10.10", priority=1, expires_at=after(days=3)),
        granted("b", "5", reason="FREE_CREDIT_GRANT"),
        granted("gone", "7", expires_at=after(hours=1)),
        debited("d", "12.5", at=after(minutes=5)),
        debited("over", "100", at=after(minutes=6)),
        expired("gone", at=after(hours=1)),
        granted("c", "3", wallet_id="w2"),
        frozen(wallet_id="w2", at=after(hours=2)),
        terminated(wallet_id="w2", at=after(hours=3)),
        USAGE,
    ]


def test_an_account_round_trips_exactly() -> None:
    account = given(*history())
    over = next(e for e in ledger_of(account) if e.id == "over")
    assert over.draws  # the snapshot really holds draws and shortfalls
    assert over.shortfall == D("90.4")
    assert account.periods  # … and a priced usage period
    data = encode_account(account)
    decoded = decode_account(data)
    assert decoded == account
    assert encode_account(decoded) == data
    assert (decoded.position, decoded.applied, decoded.usage_events) == ("12-0", 12, 1)


def test_a_rebuild_from_decoded_events_encodes_to_the_same_bytes_as_the_live_fold() -> None:
    live = given(*history())
    rebuilt = given(*(decode_event(encode_event(event)) for event in history()))
    assert encode_account(live) == encode_account(live)
    assert encode_account(rebuilt) == encode_account(live)


def test_equal_events_encode_to_the_same_bytes() -> None:
    first = granted("g", "1")
    one = msgspec.structs.replace(first, metadata={"a": "1", "b": "2"})
    other = msgspec.structs.replace(first, metadata={"b": "2", "a": "1"})
    assert one == other
    assert encode_event(one) == encode_event(other)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc1", msgspec.msgpack.encode({"type": "no_such_event", "id": "e", "at": AT}),
     msgspec.msgpack.encode({"type": "credits_granted", "id": "e", "at": AT, "wallet_id": "w1"})],
)
def test_undecodable_bytes_raise_instead_of_yielding_an_event(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_event(data)


MAP_ENCODED = json.loads((Path(__file__).parent / "fixtures" / "map_encoded.json").read_text())


def test_events_and_ledger_entries_travel_as_arrays_without_field_names() -> None:
    assert all(encode_event(event)[0] in (*range(0x90, 0xA0), 0xDC) for event in SAMPLES)
    assert all(b"wallet_id" not in encode_event(event) for event in SAMPLES)
    for entry in ledger_of(given(*history())):
        assert encode_ledger_entry(entry)[0] in (*range(0x90, 0xA0), 0xDC)


@pytest.mark.parametrize("index", range(len(SAMPLES)), ids=lambda i: type(SAMPLES[i]).__name__)
def test_an_event_a_store_wrote_as_a_map_reads_the_same(index: int) -> None:
    """Bytes the previous encoding wrote (captured in fixtures/map_encoded.json) decode to the same event, and
    re-encode to the current, shorter form."""
    old = bytes.fromhex(MAP_ENCODED["events"][index])
    assert old[0] in (*range(0x80, 0x90), 0xDE)
    decoded = decode_event(old)
    assert type(decoded) is type(SAMPLES[index])
    assert decoded == SAMPLES[index]
    assert encode_event(decoded) == encode_event(SAMPLES[index])  # exact digits and instants, not only equal
    assert len(encode_event(decoded)) < len(old)


def test_a_ledger_entry_a_store_wrote_as_a_map_reads_the_same() -> None:
    entries = ledger_of(given(*history()))
    assert len(MAP_ENCODED["ledger_entries"]) == len(entries)
    for blob, entry in zip(MAP_ENCODED["ledger_entries"], entries, strict=True):
        old = bytes.fromhex(blob)
        assert decode_ledger_entry(old) == entry
        assert encode_ledger_entry(decode_ledger_entry(old)) == encode_ledger_entry(entry)
        assert decode_ledger_entry(encode_ledger_entry(entry)) == entry
        assert len(encode_ledger_entry(entry)) < len(old)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_an_array_without_its_trailing_fields_reads_them_as_defaults(event: AnyEvent) -> None:
    """What lets a field be added last: an entry written before it existed decodes with its default."""
    fields = msgspec.structs.fields(type(event))
    last = fields[-1]
    if last.required:
        pytest.skip("the last field has no default")
    shorter = msgspec.msgpack.decode(encode_event(event))[:-1]
    decoded = decode_event(msgspec.msgpack.encode(shorter))
    expected = last.default if last.default_factory is msgspec.NODEFAULT else last.default_factory()
    assert getattr(decoded, last.name) == expected


def test_an_account_ref_encodes_as_the_event_store_wrote_it_and_decodes_back() -> None:
    ref = AccountRef("tenant", "env", "cust:1")
    assert encode_ref(ref) == b"\x93\xa6tenant\xa3env\xa6cust:1"  # a 3-array of strings, as stored since the start
    assert decode_ref(encode_ref(ref)) == ref
