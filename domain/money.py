"""Exact decimal arithmetic for credits and money: the strict wire grammar, the domain's context, canonical strings.

Grammar of a decimal on the wire (a JSON string; JSON numbers are held to the same bounds, floats via their repr):
`-?D+(.D+)?([eE][+-]?D+)?` where D is an ASCII digit 0-9, at most DECIMAL_TEXT_MAX_LENGTH characters. No leading
`+`, no spaces, no `_`, no other digits, no NaN or Infinity. The value it denotes, written without exponent and
without insignificant zeros, has at most DECIMAL_INTEGER_DIGITS digits before the point and DECIMAL_FRACTION_DIGITS
after it (`1e3` and `2.50` are fine, `1e15` and `0.0000000000001` are not). The exponent is checked against those
bounds as an integer: no out-of-bounds Decimal is ever built.

Every computation of the domain runs in CONTEXT (see `exact`): wide enough that every in-bounds computation is
exact, with traps on, so an out-of-range or inexact step raises instead of rounding silently. Division (amount ->
credits, balance -> credit balance) is the one documented inexact step; it rounds to DIVISION_PLACES.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    getcontext,
    setcontext,
)
from functools import wraps
from typing import Final, ParamSpec, TypeVar

from domain.bounds import DECIMAL_FRACTION_DIGITS, DECIMAL_INTEGER_DIGITS, DECIMAL_TEXT_MAX_LENGTH

ZERO: Final = Decimal(0)  # Final: compiled modules read it from a C static, not the module's dict
DIVISION_PLACES = Decimal((0, (1,), -DECIMAL_FRACTION_DIGITS))
INTEGER_LIMIT = 10**DECIMAL_INTEGER_DIGITS
# An in-bounds value has at most 27 significant digits; a product of two at most 54 (< 10^30, steps of 10^-24); a
# quotient rounded to 12 places of such a product by a rate >= 10^-12 at most 54 + 2 guard digits. Sums of usage
# quantities grow the integer part by one digit per tenfold more events: 120 digits leave room for 10^60 events.
PRECISION = 120
EXPONENT_LIMIT = 10 * PRECISION
CONTEXT = Context(prec=PRECISION, rounding=ROUND_HALF_EVEN, Emax=EXPONENT_LIMIT, Emin=-EXPONENT_LIMIT,
                  traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
# Division rounds: first to PRECISION digits with ROUND_05UP (which keeps a later rounding correct), then to
# DIVISION_PLACES with the rounding asked for.
_DIVISION = Context(prec=PRECISION, rounding=ROUND_05UP, Emax=EXPONENT_LIMIT, Emin=-EXPONENT_LIMIT,
                    traps=[InvalidOperation, DivisionByZero, Overflow])
_GRAMMAR = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?")

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def exact_arithmetic() -> Iterator[None]:
    """CONTEXT for a whole loop of `exact` calls (each then finds it in place instead of entering it), and the
    caller's own context back after."""
    outer = getcontext()
    setcontext(CONTEXT)
    try:
        yield
    finally:
        setcontext(outer)


def exact(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` in CONTEXT, then give the caller its own context back (decimal contexts are context-local,
    so other tasks and threads never see it). Nested calls find CONTEXT in place and just run."""

    @wraps(function)
    def in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        outer = getcontext()
        if outer is CONTEXT:
            return function(*args, **kwargs)
        setcontext(CONTEXT)  # the object itself, not a copy: entering costs no allocation
        try:
            return function(*args, **kwargs)
        finally:
            setcontext(outer)

    return in_context


def parse_decimal(value: str | int | float | Decimal) -> Decimal:
    """An in-bounds decimal, exactly (integral values with exponent 0); ValueError saying why for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not -INTEGER_LIMIT < value < INTEGER_LIMIT:
            raise ValueError(f"more than {DECIMAL_INTEGER_DIGITS} digits before the point")
        return Decimal(value)
    if isinstance(value, str) and (plain := _plain(value)) is not None:
        return plain
    return _bounded(*_parts(value))


def parse_quantity(value: str | int | float) -> Decimal:
    """A usage quantity: the decimal grammar (surrounding whitespace ignored), fraction digits beyond the bound
    rounded half-even (a float such as 0.1 + 0.2 is a quantity of 0.3); ValueError when it is no such number or
    has too many digits before the point."""
    if isinstance(value, str):
        value = value.strip()
        if (plain := _plain(value)) is not None:
            return plain
    negative, digits, scale = _parts(value)
    floor = -(DECIMAL_FRACTION_DIGITS + DECIMAL_TEXT_MAX_LENGTH + 2)  # below it, every such value rounds to 0
    if scale >= -DECIMAL_FRACTION_DIGITS or not digits.strip("0"):
        return _bounded(negative, digits, scale)
    if len(digits.lstrip("0")) + scale > DECIMAL_INTEGER_DIGITS:
        raise ValueError(f"more than {DECIMAL_INTEGER_DIGITS} digits before the point")
    unrounded = Decimal((int(negative), tuple(map(int, digits)), max(scale, floor)))
    rounded = unrounded.quantize(DIVISION_PLACES, rounding=ROUND_HALF_EVEN, context=_DIVISION)
    return parse_decimal(rounded)


def _parts(value: str | int | float | Decimal) -> tuple[bool, str, int]:
    """(negative, digits, scale) of a wire value within the grammar; never builds the number itself."""
    if isinstance(value, bool):
        raise ValueError("not a decimal number")
    if isinstance(value, int):
        return value < 0, str(abs(value)), 0
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("not a finite number")
        parts = value.as_tuple()
        assert isinstance(parts.exponent, int)
        return bool(parts.sign), "".join(map(str, parts.digits)), parts.exponent
    text = repr(value) if isinstance(value, float) else value
    if len(text) > DECIMAL_TEXT_MAX_LENGTH:
        raise ValueError(f"longer than {DECIMAL_TEXT_MAX_LENGTH} characters")
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        raise ValueError("not a decimal number (digits 0-9, an optional '-', '.' and exponent)")
    sign, whole, fraction, exponent_text = match.groups()
    fraction = fraction or ""
    return sign == "-", whole + fraction, int(exponent_text or 0) - len(fraction)


def _plain(text: str) -> Decimal | None:
    """The common case, parsed by Decimal itself: the grammar without exponent, digits within bounds."""
    match = _GRAMMAR.fullmatch(text)
    if match is None or match[4] is not None:
        return None
    if len(match[2]) > DECIMAL_INTEGER_DIGITS or len(match[3] or "") > DECIMAL_FRACTION_DIGITS:
        return None
    return Decimal(text)


def _bounded(negative: bool, digits: str, scale: int) -> Decimal:
    """digits * 10**scale, refused when it has too many digits before or after the point."""
    significant = digits.lstrip("0")
    stripped = significant.rstrip("0")
    if not stripped:
        return ZERO
    scale += len(significant) - len(stripped)
    if scale < -DECIMAL_FRACTION_DIGITS:
        raise ValueError(f"more than {DECIMAL_FRACTION_DIGITS} digits after the point")
    if len(stripped) + scale > DECIMAL_INTEGER_DIGITS:
        raise ValueError(f"more than {DECIMAL_INTEGER_DIGITS} digits before the point")
    if scale > 0:
        stripped, scale = stripped + "0" * scale, 0
    return Decimal((int(negative), tuple(map(int, stripped)), scale))


def divide(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator rounded half-even to DIVISION_PLACES, then stripped of trailing zeros."""
    return canonical(_DIVISION.divide(numerator, denominator).quantize(
        DIVISION_PLACES, rounding=ROUND_HALF_EVEN, context=_DIVISION))


def divide_up(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator rounded up to DIVISION_PLACES: enough credits to pay an amount in full."""
    return canonical(_DIVISION.divide(numerator, denominator).quantize(
        DIVISION_PLACES, rounding=ROUND_CEILING, context=_DIVISION))


def canonical(value: Decimal) -> Decimal:
    """The same number without trailing zeros and without a negative zero."""
    if value == 0:
        return ZERO
    normal = value.normalize(CONTEXT)
    # A positive exponent (1E+2 for 100) is the one case str() writes as "E+": a fifth of as_tuple()'s cost.
    return normal.quantize(Decimal(1), context=CONTEXT) if "E+" in str(normal) else normal


def to_wire(value: Decimal) -> str:
    """The canonical string a decimal leaves the API as: '87.5', '100', '0': `format(canonical(value), "f")`,
    written without canonical's last step (the "f" format writes 1E+2 as 100, which is all its quantize does)."""
    return "0" if not value else fixed_point(value.normalize(CONTEXT))


def fixed_point(value: Decimal) -> str:
    """`format(value, "f")`: str() where it writes no exponent (from 1E-6 up to an exponent of 0: nearly every
    amount), at under half the format's cost."""
    text = str(value)
    return text if "E" not in text else format(value, "f")
