"""The rate card: each billing model at its edges, COUNT vs SUM, filters, versions in force, price checks."""

from datetime import timedelta
from decimal import Decimal

import msgspec
import pytest

from domain.pricing import PriceVersion, charge, check_price, in_force, quantity_of
from tests.unit.usage_given import FEB, JAN, package, price, tier, tiered

D = Decimal
replace = msgspec.structs.replace
SLAB_TIERS = (tier("10", "1", flat="5"), tier("20", "0.5", flat="2"), tier(None, "0.1", flat="1"))


@pytest.mark.parametrize(
    ("quantity", "amount"), [("0", "0"), ("-3", "0"), ("1", "0.25"), ("4", "1"), ("10.5", "2.625"), ("1000", "250")]
)
def test_flat_fee_charges_each_unit_at_the_amount(quantity: str, amount: str) -> None:
    assert charge(price(amount="0.25"), D(quantity)) == D(amount)


@pytest.mark.parametrize(
    ("quantity", "up", "down"),
    [("0", "0", "0"), ("1", "5", "0"), ("99", "5", "0"), ("100", "5", "5"), ("100.5", "10", "5"),
     ("101", "10", "5"), ("199", "10", "5"), ("200", "10", "10"), ("201", "15", "10")],
)
def test_package_charges_whole_packages_rounded_up_or_down(quantity: str, up: str, down: str) -> None:
    assert charge(package("5", "100", round_up=True), D(quantity)) == D(up)
    assert charge(package("5", "100", round_up=False), D(quantity)) == D(down)


def test_package_with_a_fractional_size_rounds_on_the_exact_quotient() -> None:
    pkg = package("2", "0.3")
    assert charge(pkg, D("0.9")) == D(6)
    assert charge(pkg, D("0.91")) == D(8)
    assert charge(replace(pkg, round_up=False), D("0.89")) == D(4)


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        ("1", "6"),  # 1 x 1 + flat 5
        ("10", "15"),  # exactly at the first up_to: the second tier's flat fee is not due yet
        ("10.5", "17.25"),  # 15 + 0.5 x 0.5 + 2
        ("11", "17.5"),  # one above: 15 + 1 x 0.5 + 2
        ("20", "22"),  # 15 + 10 x 0.5 + 2
        ("21", "23.1"),  # three tiers: 22 + 1 x 0.1 + 1
        ("125", "33.5"),  # unbounded last tier: 22 + 105 x 0.1 + 1
    ],
)
def test_graduated_tiers_charge_each_slab_at_its_own_rate_plus_its_flat_amount(quantity: str, amount: str) -> None:
    assert charge(tiered("SLAB", *SLAB_TIERS), D(quantity)) == D(amount)


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [("0", "0"), ("1", "6"), ("10", "15"), ("10.5", "7.25"), ("11", "7.5"), ("20", "12"), ("21", "3.1"),
     ("1000", "101")],
)
def test_volume_tiers_charge_the_whole_quantity_at_the_tier_reached(quantity: str, amount: str) -> None:
    assert charge(tiered("VOLUME", *SLAB_TIERS), D(quantity)) == D(amount)


def test_graduated_and_volume_agree_within_the_first_tier_and_differ_after_it() -> None:
    slab, volume = tiered("SLAB", *SLAB_TIERS), tiered("VOLUME", *SLAB_TIERS)
    assert charge(slab, D(7)) == charge(volume, D(7)) == D(12)
    assert (charge(slab, D(15)), charge(volume, D(15))) == (D("19.5"), D("9.5"))


def test_quantity_beyond_a_bounded_last_tier_is_either_refused_or_charged() -> None:
    bounded = tiered("SLAB", tier("10", "1"), tier("20", "0.5"))
    assert check_price(bounded) != [] or charge(bounded, D(30)) > charge(bounded, D(20))


def test_count_adds_one_per_event_whatever_its_properties() -> None:
    count = price(aggregation="COUNT", field="tokens")
    assert [quantity_of(count, props) for props in ({}, {"tokens": 50}, {"tokens": "x"})] == [D(1), D(1), D(1)]


@pytest.mark.parametrize(
    ("value", "quantity"),
    [(12, D(12)), ("12.5", D("12.5")), (" 7 ", D(7)), (0.1, D("0.1")), ("-2", D(-2)), (0, D(0))],
)
def test_sum_adds_the_numeric_value_of_its_field(value: str | int | float, quantity: Decimal) -> None:
    assert quantity_of(price(aggregation="SUM", field="tokens"), {"tokens": value}) == quantity


@pytest.mark.parametrize("properties", [{}, {"other": 5}, {"tokens": "abc"}, {"tokens": ""}, {"tokens": "NaN"},
                                        {"tokens": "Infinity"}, {"tokens": float("nan")}, {"tokens": float("inf")},
                                        {"tokens": True}, {"tokens": False}])
def test_sum_does_not_count_a_missing_non_numeric_or_boolean_field(properties: dict[str, str | int | float]) -> None:
    assert quantity_of(price(aggregation="SUM", field="tokens"), properties) is None


@pytest.mark.parametrize(
    ("properties", "quantity"),
    [({"region": "us"}, D(1)), ({"region": "eu"}, D(1)), ({"region": "ap"}, None), ({}, None),
     ({"region": "US"}, None)],
)
def test_a_filter_admits_any_of_its_values_and_nothing_else(
    properties: dict[str, str | int | float], quantity: Decimal | None
) -> None:
    assert quantity_of(price(filters={"region": ("us", "eu")}), properties) == quantity


def test_every_filter_must_match_and_values_compare_as_strings() -> None:
    filtered = price(aggregation="SUM", field="n", filters={"region": ("us",), "plan": ("1", "2")})
    assert quantity_of(filtered, {"region": "us", "plan": 2, "n": "4"}) == D(4)
    assert quantity_of(filtered, {"region": "us", "plan": "3", "n": "4"}) is None
    assert quantity_of(filtered, {"plan": "1", "n": "4"}) is None


def test_a_version_is_in_force_from_its_effective_instant_inclusive() -> None:
    v1 = price("v1", lookup_key="calls", amount="1", effective_from=JAN)
    v2 = price("v2", lookup_key="calls", amount="2", effective_from=FEB)
    micro = timedelta(microseconds=1)
    assert in_force([v2, v1], "api_call", JAN - micro) == []
    assert in_force([v2, v1], "api_call", JAN) == [v1]
    assert in_force([v2, v1], "api_call", FEB - micro) == [v1]
    assert in_force([v2, v1], "api_call", FEB) == [v2]
    assert in_force([v1, v2], "api_call", FEB + timedelta(days=400)) == [v2]


def test_each_lookup_key_contributes_its_own_latest_version_and_other_events_are_ignored() -> None:
    calls_old = price("calls-1", lookup_key="calls", amount="1", effective_from=JAN)
    calls_new = price("calls-2", lookup_key="calls", amount="3", effective_from=JAN + timedelta(days=3))
    tokens = price("tok-1", lookup_key="tokens", aggregation="SUM", field="t", amount="0.5", effective_from=JAN)
    other = price("o", lookup_key="other", event="upload", effective_from=JAN)
    chosen = in_force([tokens, calls_new, other, calls_old], "api_call", JAN + timedelta(days=10))
    assert [v.id for v in chosen] == ["calls-2", "tok-1"]
    properties = {"t": "8"}
    total = sum(charge(v, q) for v in chosen if (q := quantity_of(v, properties)) is not None)
    assert total == D(7)


def test_versions_effective_at_the_same_instant_are_decided_by_creation_then_id() -> None:
    first = price("a", lookup_key="k", effective_from=JAN, created_at=JAN)
    second = price("b", lookup_key="k", effective_from=JAN, created_at=JAN + timedelta(seconds=1))
    twin = price("c", lookup_key="k", effective_from=JAN, created_at=JAN + timedelta(seconds=1))
    assert in_force([second, first], "api_call", FEB) == [second]
    assert in_force([twin, second, first], "api_call", FEB) == [twin]


def test_sound_prices_have_no_problems() -> None:
    assert check_price(price(amount="0.01")) == []
    assert check_price(price(aggregation="SUM", field="tokens")) == []
    assert check_price(package("5", "100")) == []
    assert check_price(tiered("SLAB", *SLAB_TIERS)) == []
    assert check_price(tiered("VOLUME", tier(None, "0"))) == []


@pytest.mark.parametrize(
    ("bad", "problems"),
    [
        (price(aggregation="SUM"), ["SUM aggregation needs a field"]),
        (price(aggregation="SUM", field=""), ["SUM aggregation needs a field"]),
        (package("5", "0"), ["transform_quantity.divide_by must be positive"]),
        (package("5", "-10"), ["transform_quantity.divide_by must be positive"]),
        (tiered("SLAB"), ["TIERED pricing needs tiers"]),
        (tiered("SLAB", tier(None, "1"), tier("10", "1")), ["the last tier, and only the last, must have no up_to"]),
        (tiered("SLAB", tier("10", "1"), tier("10", "2"), tier(None, "1")),
         ["tier up_to values must be positive and strictly increasing"]),
        (tiered("VOLUME", tier("20", "1"), tier("10", "2"), tier(None, "1")),
         ["tier up_to values must be positive and strictly increasing"]),
        (tiered("SLAB", tier("0", "1"), tier(None, "1")),
         ["tier up_to values must be positive and strictly increasing"]),
        (price(amount="-0.01"), ["amounts cannot be negative"]),
        (tiered("SLAB", tier("10", "1"), tier(None, "-1")), ["amounts cannot be negative"]),
        (tiered("SLAB", tier("10", "1", flat="-5"), tier(None, "1")), ["amounts cannot be negative"]),
        (replace(package("-1", "0"), aggregation="SUM"),
         ["SUM aggregation needs a field", "transform_quantity.divide_by must be positive",
          "amounts cannot be negative"]),
    ],
)
def test_check_price_names_each_problem(bad: PriceVersion, problems: list[str]) -> None:
    assert check_price(bad) == problems
