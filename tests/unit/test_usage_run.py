"""Usage runs folded in one step (domain/usage_run.py, projector/batch.py) are exactly the fold event by event.

Property: any generated history (wallets with alert thresholds and auto top-up, lots that expire, debits, usage
priced flat, by package and by tiers, late usage, period closes, cycle changes, updates), folded by
`fold_entries` in batches of any sizes, reaches the same snapshot bytes, writes the same ledger changes and the same
notices (alert transitions at the same positions) as `advance_logged` + `notice_writes` one event at a time. And by
example: a run stops just before the event whose usage crosses a threshold, which then folds alone.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from domain.codec import encode_account, encode_event
from domain.events import (
    AnyEvent,
    BillingCycleSet,
    CreditsDebited,
    CreditsExpired,
    CreditsGranted,
    PeriodClosed,
    UsageRecorded,
    WalletCreated,
    WalletFrozen,
    WalletTerminated,
    WalletUnfrozen,
    WalletUpdated,
)
from domain.fold import advance_logged, fold
from domain.identity import AccountRef
from domain.lots import available_credits, is_available
from domain.money import ZERO, exact_arithmetic
from domain.periods import DEFAULT_CYCLE, period_of
from domain.pricing import PriceVersion, Tier
from domain.settings import AlertSettings, AlertThreshold, AutoTopup
from domain.state import EMPTY_ACCOUNT, Account, LedgerWrite
from domain.usage import pending_charges, period_charges
from domain.usage_run import fold_usage_run
from projector.batch import fold_entries, notice_writes
from store.entries import decode_entry
from store.keys import Keys
from store.projection import FeedEntry, NoticeWrite
from store.ratecard import RateCards

REF = AccountRef("t", "e", "c")
T0 = datetime(2025, 1, 1, tzinfo=UTC)
WALLETS = ("w0", "w1")
D = Decimal
CARDS = RateCards(Redis(), Keys())  # never asked: the usage entries carry their prices

amounts = st.decimals(D(0), D(3), places=2)
credits = st.decimals(D("0.5"), D(120), places=1)


@st.composite
def prices(draw: st.DrawFn, index: int) -> PriceVersion:
    model = draw(st.sampled_from(["FLAT_FEE", "PACKAGE", "TIERED"]))
    summed = draw(st.booleans())
    return PriceVersion(
        id=f"p{index}", lookup_key=draw(st.sampled_from("ab")), event_name=draw(st.sampled_from(["api", "tok"])),
        currency=draw(st.sampled_from(["USD", "EUR"])), aggregation="SUM" if summed else "COUNT",
        field="n" if summed else None, filters=draw(st.sampled_from([{}, {"region": ("eu",)}])),
        billing_model=model, amount=draw(amounts), package_size=D(draw(st.sampled_from([1, 5]))),
        tiers=(Tier(up_to=D(10), unit_amount=draw(amounts)), Tier(up_to=None, unit_amount=draw(amounts)))
        if model == "TIERED" else (),
        effective_from=T0 + timedelta(hours=draw(st.integers(-24, 48))), created_at=T0,
    )


@st.composite
def alerts(draw: st.DrawFn) -> AlertSettings | None:
    if draw(st.integers(0, 4)) == 0:
        return None
    condition = draw(st.sampled_from(["below", "above"]))
    values = sorted(draw(st.lists(st.decimals(-20, 120, places=1), min_size=1, max_size=3, unique=True)),
                    reverse=condition == "above")
    levels = [AlertThreshold(threshold=v, condition=condition) for v in values] + [None] * (3 - len(values))
    return AlertSettings(alert_enabled=draw(st.integers(0, 5)) > 0, critical=levels[0], warning=levels[1],
                         info=levels[2])


@st.composite
def topups(draw: st.DrawFn) -> AutoTopup | None:
    if draw(st.booleans()):
        return None
    return AutoTopup(enabled=draw(st.integers(0, 3)) > 0, threshold=draw(st.decimals(-10, 80, places=0)),
                     amount=D(25), cooldown_seconds=draw(st.sampled_from([0, 600])))


@st.composite
def histories(draw: st.DrawFn) -> list[AnyEvent]:
    """Events at non-decreasing times; usage comes in runs of 1 to 12 events, often late, priced by the versions."""
    versions = tuple(draw(prices(i)) for i in range(draw(st.integers(0, 4))))
    now, serial, events = T0, 0, list[AnyEvent]()

    def next_id() -> str:
        nonlocal serial
        serial += 1
        return f"e{serial}"

    for w in range(draw(st.integers(1, 2))):
        events.append(WalletCreated(
            id=next_id(), at=now, wallet_id=WALLETS[w], tenant_id="t", environment_id="e", customer_id="c",
            currency=draw(st.sampled_from(["USD", "EUR"])),
            wallet_type=draw(st.sampled_from(["PRE_PAID", "POST_PAID"])),
            conversion_rate=draw(st.sampled_from([D(1), D("0.5"), D(2)])), topup_conversion_rate=D(1),
            alert_settings=draw(alerts()), auto_topup=draw(topups()), initial_credits=draw(credits),
            initial_transaction_id=f"init{w}",
            initial_credits_expire_at=now + timedelta(hours=draw(st.integers(1, 60))),
        ))
    for _ in range(draw(st.integers(1, 25))):
        now += timedelta(seconds=draw(st.sampled_from([0, 1, 600, 3600, 86400])))
        events.extend(draw(operation(now, next_id, versions)))
    return events


@st.composite
def usage_run(draw: st.DrawFn, now: datetime, next_id: Callable[[], str],
              versions: tuple[PriceVersion, ...]) -> list[AnyEvent]:
    """1 to 12 usage events a second apart, some late (a timestamp in a period closed already), some unpriced."""
    return [UsageRecorded(
        id=next_id(), at=now + timedelta(seconds=i), event_name=draw(st.sampled_from(["api", "tok"])),
        external_customer_id="c", timestamp=now - timedelta(seconds=draw(st.sampled_from([0, 30, 7200, 90000]))),
        properties={"n": draw(st.integers(-5, 40) | st.just("x")), "region": draw(st.sampled_from(["eu", "us"]))},
        prices=versions,
    ) for i in range(draw(st.integers(1, 12)))]


@st.composite
def operation(draw: st.DrawFn, now: datetime, next_id: Callable[[], str],
              versions: tuple[PriceVersion, ...]) -> list[AnyEvent]:
    wallet = draw(st.sampled_from(WALLETS))
    kind = draw(st.sampled_from(["usage"] * 6 + ["grant", "grant", "debit", "close", "update", "cycle", "expire",
                                                  "freeze", "unfreeze", "terminate"]))
    if kind == "usage":
        return draw(usage_run(now, next_id, versions))
    if kind == "grant":
        expiry = draw(st.none() | st.integers(1, 40))
        return [CreditsGranted(id=(e := next_id()), at=now, wallet_id=wallet, transaction_id=f"tx{e}",
                               credits=draw(credits), reason="PURCHASED_CREDIT_DIRECT",
                               expires_at=None if expiry is None else now + timedelta(hours=expiry))]
    if kind == "debit":
        return [CreditsDebited(id=(e := next_id()), at=now, wallet_id=wallet, transaction_id=f"tx{e}",
                               credits=draw(st.decimals(D(1), D(40), places=0)), reason="MANUAL_BALANCE_DEBIT")]
    if kind == "close":
        start, end = period_of(DEFAULT_CYCLE, now - timedelta(days=draw(st.integers(0, 40))))
        return [PeriodClosed(id=next_id(), at=now, period_start=start, period_end=end)]
    if kind == "update":
        return [WalletUpdated(id=next_id(), at=now, wallet_id=wallet, alert_settings=draw(alerts()),
                              auto_topup=draw(topups()))]
    if kind == "cycle":
        return [BillingCycleSet(id=next_id(), at=now, anchor=T0, unit=draw(st.sampled_from(["hour", "day"])),
                                count=draw(st.integers(1, 3)))]
    if kind == "expire":
        return [CreditsExpired(id=(e := next_id()), at=now, wallet_id=wallet, lot_id=f"init{wallet[-1]}",
                               transaction_id=f"tx{e}")]
    if kind == "terminate":
        return [WalletTerminated(id=(e := next_id()), at=now, wallet_id=wallet, transaction_id=f"tx{e}")]
    changed = WalletFrozen if kind == "freeze" else WalletUnfrozen
    return [changed(id=next_id(), at=now, wallet_id=wallet)]


def entries_of(events: list[AnyEvent]) -> list[FeedEntry]:
    return [FeedEntry(f"{n}-0", REF, f"{n}-0", encode_event(e), previous=f"{n - 1}-0")
            for n, e in enumerate(events, start=1)]


Folded = tuple[Account, list[LedgerWrite], list[NoticeWrite], str | None]


def one_by_one(entries: list[FeedEntry]) -> Folded:
    """The fold as it was: each event advanced alone, its notices found comparing the account before and after."""
    account, ledger, notices = EMPTY_ACCOUNT, list[LedgerWrite](), list[NoticeWrite]()
    with exact_arithmetic():
        for entry in entries:
            try:
                event = decode_entry(entry.payload, entry.rates, CARDS)
                after, written = advance_logged(account, entry.log_position, event)
                notices += notice_writes(REF, account, after, entry.log_position, event.at, written)
            except Exception:
                return account, ledger, notices, entry.log_position
            account = after
            ledger += written
    return account, ledger, notices, None


def in_batches(entries: list[FeedEntry], sizes: list[int]) -> Folded:
    account, ledger, notices = EMPTY_ACCOUNT, list[LedgerWrite](), list[NoticeWrite]()
    start, turn = 0, 0
    while start < len(entries):
        size = sizes[turn % len(sizes)]
        result = fold_entries(REF, account, entries[start:start + size], CARDS)
        account, ledger, notices = result.account, ledger + result.ledger, notices + result.notices
        if result.failure is not None:
            return account, ledger, notices, result.failure.log_position
        start, turn = start + size, turn + 1
    return account, ledger, notices, None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(), st.lists(st.integers(1, 40), min_size=1, max_size=5))
def test_folding_in_batches_of_any_sizes_is_folding_event_by_event(events: list[AnyEvent], sizes: list[int]) -> None:
    entries = entries_of(events)
    expected, batched = one_by_one(entries), in_batches(entries, sizes)
    assert encode_account(batched[0]) == encode_account(expected[0])
    assert batched[1] == expected[1]
    assert batched[2] == expected[2]
    assert batched[3] == expected[3]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_a_run_folds_exactly_its_prefix_and_stops_only_where_the_watch_moves_a_wallet(events: list[AnyEvent]) -> None:
    """fold_usage_run over the usage events that follow any point of a history: the account fold reaches after the
    n it folded; the event it stopped before moves a wallet (or raises) when folded alone."""
    for cut in range(len(events)):
        run = [(f"{n}-0", e) for n, e in enumerate(events[cut:], start=cut + 1) if isinstance(e, UsageRecorded)]
        if not run or run[0][0] != f"{cut + 1}-0":
            continue
        run = run[:next((i for i, (p, _) in enumerate(run) if p != f"{cut + 1 + i}-0"), len(run))]
        before = fold(EMPTY_ACCOUNT, ((f"{n}-0", e) for n, e in enumerate(events[:cut], start=1)))
        account, n = fold_usage_run(before, run)
        assert encode_account(account) == encode_account(fold(before, run[:n]))
        if n < len(run):
            stopped_at = fold(before, run[:n])
            try:
                after = fold(stopped_at, run[n:n + 1])
            except Exception:
                continue
            assert after.wallets != stopped_at.wallets  # an alert state or a top-up trigger moved



@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_the_balance_sums_are_the_sums_of_their_definitions(events: list[AnyEvent]) -> None:
    """After every event of any history: pending charges per currency equal the per-period charges summed, and each
    wallet's available credits the remaining credits of its lots available at the event's instant (and then), to
    the digit: the same value with the same exponent."""
    account = EMPTY_ACCOUNT
    for n, event in enumerate(events, start=1):
        account = fold(account, [(f"{n}-0", event)])
        for currency in ("USD", "EUR"):
            with exact_arithmetic():
                summed = sum((period_charges(p).get(currency, ZERO) for p in account.periods.values()), ZERO)
            assert pending_charges(account, currency).as_tuple() == summed.as_tuple()
        for wallet in account.wallets.values():
            for at in (event.at, event.at + timedelta(days=40)):
                counted = sum((lot.remaining for lot in wallet.lots if is_available(lot, at)), ZERO)
                assert available_credits(wallet.lots, at).as_tuple() == counted.as_tuple()

def usage(n: int, units: int) -> UsageRecorded:
    return UsageRecorded(id=f"u{n}", at=T0 + timedelta(seconds=n), event_name="api", external_customer_id="c",
                         timestamp=T0 + timedelta(seconds=n), properties={"n": units}, prices=(PER_UNIT,))


PER_UNIT = PriceVersion(id="p", lookup_key="p", event_name="api", currency="USD", aggregation="SUM", field="n",
                        billing_model="FLAT_FEE", amount=D(1), effective_from=T0 - timedelta(days=1), created_at=T0)


def test_a_run_stops_just_before_the_crossing_event_which_then_alerts_and_arms_the_top_up_at_its_position() -> None:
    below = AlertSettings(alert_enabled=True, critical=AlertThreshold(threshold=D(10)),
                          warning=AlertThreshold(threshold=D(50)))
    wallet = WalletCreated(
        id="c", at=T0, wallet_id="w0", tenant_id="t", environment_id="e", customer_id="c", currency="USD",
        wallet_type="PRE_PAID", conversion_rate=D(1), topup_conversion_rate=D(1), alert_settings=below,
        auto_topup=AutoTopup(enabled=True, threshold=D(5), amount=D(25)), initial_credits=D(100),
        initial_transaction_id="init",
    )
    events: list[AnyEvent] = [wallet, *(usage(n, 20) for n in range(1, 7))]  # 100 -> 80, 60, 40, 20, 0, -20
    entries = entries_of(events)
    created = fold(EMPTY_ACCOUNT, [("1-0", wallet)])
    account, n = fold_usage_run(created, [(e.log_position, ev) for e, ev in zip(entries[1:], events[1:],
                                                                                  strict=True)
                                           if isinstance(ev, UsageRecorded)])
    assert (n, account.position) == (2, "3-0")  # the third usage (at 4-0) leaves 40: below the warning level
    result = fold_entries(REF, EMPTY_ACCOUNT, entries, CARDS)
    assert result.failure is None and result.account.position == "7-0"
    alerts = [w.key.split(":", 3)[-1] for w in result.notices if ":ongoing_balance:" in w.key]
    assert alerts == ["ongoing_balance:4-0", "ongoing_balance:6-0"]  # warning at 40, in alarm at 0
    assert result.account.wallets["w0"].auto_topup_trigger == "6-0"  # 0 <= 5: armed by the crossing event
    assert result.notices == one_by_one(entries)[2]
