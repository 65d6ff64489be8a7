"""Exact decimal arithmetic for credits and money: parsing, canonical strings, bounded division."""

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, InvalidOperation

ZERO = Decimal(0)
# Division (amount -> credits, balance -> credit balance) is the only inexact step; it keeps this many places.
DIVISION_PLACES = Decimal("1e-12")
MAX_DIGITS = 28


def parse_decimal(text: str | int | float | Decimal) -> Decimal:
    """Parse a wire decimal exactly; raise ValueError on anything that is not a finite number."""
    try:
        value = text if isinstance(text, Decimal) else Decimal(str(text).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a decimal: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {text!r}")
    if len(value.as_tuple().digits) > MAX_DIGITS:
        raise ValueError(f"too many digits: {text!r}")
    return value


def divide(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator rounded half-even to DIVISION_PLACES, then stripped of trailing zeros."""
    return canonical((numerator / denominator).quantize(DIVISION_PLACES, rounding=ROUND_HALF_EVEN))


def divide_up(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator rounded up to DIVISION_PLACES: enough credits to pay an amount in full."""
    return canonical((numerator / denominator).quantize(DIVISION_PLACES, rounding=ROUND_CEILING))


def canonical(value: Decimal) -> Decimal:
    """The same number without trailing zeros and without a negative zero."""
    if value == 0:
        return ZERO
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal if isinstance(exponent, int) and exponent <= 0 else normal.quantize(Decimal(1))


def to_wire(value: Decimal) -> str:
    """The canonical string a decimal leaves the API as: '87.5', '100', '0'."""
    return format(canonical(value), "f")
