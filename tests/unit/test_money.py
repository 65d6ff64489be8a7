"""The decimal grammar and bounds (property tests against Python's own Decimal parser), exact division, the context."""

from decimal import ROUND_HALF_EVEN, Decimal, getcontext
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.bounds import DECIMAL_FRACTION_DIGITS, DECIMAL_INTEGER_DIGITS, DECIMAL_TEXT_MAX_LENGTH
from domain.money import (
    CONTEXT,
    canonical,
    divide,
    divide_up,
    exact,
    fixed_point,
    parse_decimal,
    parse_quantity,
    to_wire,
)

DIGITS = "0123456789"
LARGEST = Decimal("999999999999999.999999999999")  # 15 digits before the point, 12 after


def in_bounds(value: Decimal) -> bool:
    """The documented bounds, read off Python's own parse of the text (independent of domain/money.py)."""
    if value.is_zero():
        return True
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return exponent + trailing >= -DECIMAL_FRACTION_DIGITS and value.adjusted() < DECIMAL_INTEGER_DIGITS


def accepted(text: str | int | float) -> Decimal | None:
    try:
        return parse_decimal(text)
    except ValueError:
        return None


@st.composite
def valid_texts(draw: st.DrawFn) -> str:
    """Texts of the grammar whose value is in bounds: plain, with a fraction, or shifted by an exponent."""
    whole = draw(st.text(DIGITS, min_size=1, max_size=DECIMAL_INTEGER_DIGITS))
    fraction = draw(st.text(DIGITS, max_size=DECIMAL_FRACTION_DIGITS))
    sign = draw(st.sampled_from(["", "-"]))
    shift = draw(st.integers(-len(whole) + 1, len(fraction))) if draw(st.booleans()) else None
    if shift is None:
        return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"
    digits = whole + fraction  # move the point by `shift` and compensate with an exponent
    point = len(whole) + shift
    mantissa = digits[:point] + ("." + digits[point:] if digits[point:] else "")
    marker = draw(st.sampled_from(["e", "E"]))
    exponent = len(whole) - point
    return f"{sign}{mantissa}{marker}{'+' if exponent >= 0 and draw(st.booleans()) else ''}{exponent}"


@given(valid_texts())
@example("1e3")
@example("-0")
@example("999999999999999.999999999999")
@example("0.000000000001")
@example("1.50")
def test_every_text_of_the_grammar_within_bounds_is_accepted_exactly(text: str) -> None:
    assert in_bounds(Decimal(text)), text
    parsed = parse_decimal(text)
    assert parsed == Decimal(text)
    assert Decimal(to_wire(parsed)) == Decimal(text)


NEAR_MISSES = st.one_of(
    st.builds(lambda t: f" {t}", valid_texts()),
    st.builds(lambda t: f"{t} ", valid_texts()),
    st.builds(lambda t: f"{t}\n", valid_texts()),
    st.builds(lambda t: f"+{t.lstrip('-')}", valid_texts()),
    st.builds(lambda t: t[:1] + "_" + t[1:], valid_texts().filter(lambda t: t[:1].isdigit())),
    st.builds(lambda t: t.replace("1", "\u0661").replace("5", "\uff15"), valid_texts().filter(
        lambda t: "1" in t or "5" in t)),
    st.builds(lambda t: f".{t.lstrip('-')}", valid_texts()),
    st.builds(lambda t: f"{t}.", valid_texts().filter(lambda t: "." not in t and "e" not in t.lower())),
    st.sampled_from(["", "-", ".", "e3", "1e", "1e+", "--1", "1..2", "0x10", "NaN", "nan", "Infinity", "-inf",
                     "sNaN", "1,5", "1 000"]),
)


@given(NEAR_MISSES)
def test_near_misses_of_the_grammar_are_refused(text: str) -> None:
    assert accepted(text) is None, text


@given(
    st.text(DIGITS, min_size=1, max_size=30),
    st.text(DIGITS, max_size=30),
    st.sampled_from(["", "-"]),
    st.one_of(st.none(), st.integers(-60, 60), st.integers(-10**17, 10**17)),
)
@example("1", "", "", 28)
@example("1", "", "", 999999999)
@example("9", "", "", 999999)
@example("1", "", "", 15)
@example("1" * 16, "", "", None)
@example("1", "0000000000001", "", None)
def test_the_grammar_accepts_exactly_the_values_within_bounds(whole: str, fraction: str, sign: str,
                                                              exponent: int | None) -> None:
    text = sign + whole + (f".{fraction}" if fraction else "") + ("" if exponent is None else f"e{exponent}")
    expected = Decimal(text) if len(text) <= DECIMAL_TEXT_MAX_LENGTH and in_bounds(Decimal(text)) else None
    assert accepted(text) == expected, text


def test_a_thousand_digits_and_huge_exponents_are_refused_without_building_them() -> None:
    for text in ["1" * 1000, "1e999999999", "9e999999", "-1e-999999999", "0." + "0" * 11 + "1" * 2]:
        assert accepted(text) is None, text
    assert accepted("0e999999999") == 0  # zero is in bounds, whatever its exponent


@given(st.integers())
def test_integers_are_accepted_exactly_below_the_integer_bound(value: int) -> None:
    assert accepted(value) == (Decimal(value) if abs(value) < 10**DECIMAL_INTEGER_DIGITS else None)


@given(st.floats(allow_nan=True, allow_infinity=True))
@example(1e28)
@example(1e16)
@example(0.1)
@example(1e-5)
@example(0.30000000000000004)
def test_floats_are_held_to_the_bounds_of_their_repr(value: float) -> None:
    text = repr(value)
    ok = text not in ("nan", "inf", "-inf") and in_bounds(Decimal(text))
    assert accepted(value) == (Decimal(text) if ok else None), text


@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False), valid_texts()))
def test_a_quantity_rounds_extra_fraction_digits_and_keeps_the_integer_bound(value: float | str) -> None:
    exact_value = Decimal(repr(value) if isinstance(value, float) else value)
    rounded = exact_value.quantize(Decimal("1e-12"), rounding=ROUND_HALF_EVEN) if abs(exact_value) < 10**15 else None
    try:
        quantity = parse_quantity(value)
    except ValueError:
        assert rounded is None or abs(rounded) >= 10**15
        return
    assert quantity == rounded


@pytest.mark.parametrize("value", ["9e999999", "1" * 1000, 2**64, "1e16", "abc", " ", float("inf"), "1_0"])
def test_a_quantity_that_is_no_in_bounds_number_is_refused(value: str | int | float) -> None:
    with pytest.raises(ValueError):
        parse_quantity(value)


def test_a_quantity_ignores_surrounding_whitespace_and_rounds_a_long_float() -> None:
    assert parse_quantity(" 7 ") == 7
    assert parse_quantity(0.1 + 0.2) == Decimal("0.3")


@exact
def _product(a: Decimal, b: Decimal) -> Decimal:
    return a * b


AMOUNTS = st.decimals(min_value=-LARGEST, max_value=LARGEST, places=DECIMAL_FRACTION_DIGITS)
RATES = st.decimals(min_value=Decimal("1e-12"), max_value=LARGEST, places=DECIMAL_FRACTION_DIGITS)


def rounded(value: Fraction, up: bool) -> Fraction:
    scaled = value * 10**DECIMAL_FRACTION_DIGITS
    floor = scaled.numerator // scaled.denominator
    if up:
        whole = floor if scaled == floor else floor + 1
    else:
        rest = scaled - floor
        whole = floor + (1 if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2) else 0)
    return Fraction(whole, 10**DECIMAL_FRACTION_DIGITS)


@given(AMOUNTS, RATES)
def test_division_is_rounded_once_and_correctly_for_every_in_bounds_pair(numerator: Decimal, rate: Decimal) -> None:
    for value in (numerator, _product(numerator, rate)):  # in-bounds values, and products of two of them
        exact_quotient = Fraction(value) / Fraction(rate)
        assert Fraction(divide(value, rate)) == rounded(exact_quotient, up=False)
        assert Fraction(divide_up(value, rate)) == rounded(exact_quotient, up=True)


def test_in_bounds_products_are_exact_and_the_context_does_not_leak() -> None:
    before = getcontext().prec
    assert Fraction(_product(LARGEST, LARGEST)) == Fraction(LARGEST) ** 2
    assert getcontext().prec == before
    assert to_wire(_product(LARGEST, LARGEST)) == "999999999999999999999999998000.000000000000000000000001"


@given(st.decimals(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [Decimal("1E+2"), Decimal("-1.50E+3"), Decimal("100"), Decimal("-0"), Decimal("0E+7"), Decimal("1E-9")]))
def test_canonical_drops_trailing_zeros_and_negative_zero_and_keeps_the_value(value: Decimal) -> None:
    """Against a reading of the digits themselves (as_tuple): a zero is 0, any other value keeps its sign and
    digits without the trailing zeros, and its exponent is never positive."""
    got = canonical(value)
    assert got == value
    sign, digits, exponent = got.as_tuple()
    assert isinstance(exponent, int) and exponent <= 0
    if value == 0:
        assert (sign, digits, exponent) == (0, (0,), 0)
    elif exponent < 0:
        assert digits[-1] != 0
    assert got == value.normalize(CONTEXT)
    assert to_wire(value) == format(got, "f")


@given(st.decimals(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [Decimal("1E+2"), Decimal("-1.50E+3"), Decimal("-0"), Decimal("0E+7"), Decimal("0E-9"), Decimal("1E-6"),
     Decimal("1E-7"), Decimal("0.000001"), Decimal("-0.0000001"), Decimal("123456789012345678901234567890")]))
def test_fixed_point_writes_what_the_f_format_writes(value: Decimal) -> None:
    """Any decimal, canonical or not, with any exponent: str() where it has no exponent, the format otherwise."""
    assert fixed_point(value) == format(value, "f")
