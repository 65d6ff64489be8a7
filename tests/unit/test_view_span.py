"""view_span: the balance view is the same at every instant of the span it names around `now`, and the span ends
where a lot stops counting."""

from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st

from domain.balance import view_balance, view_span
from tests.unit.given import after, created, given, granted, wallet_of

HOURS = st.integers(min_value=1, max_value=48)


@settings(max_examples=60, deadline=None)
@hypothesis_given(expiries=st.lists(st.one_of(st.none(), HOURS), min_size=0, max_size=5), at=HOURS,
                  offset=st.floats(min_value=0, max_value=1))
def test_the_view_holds_over_its_span(expiries: list[int | None], at: int, offset: float) -> None:
    grants = [granted(f"l{i}", str(i + 1), reason="FREE_CREDIT_GRANT" if i % 2 else "PURCHASED_CREDIT_DIRECT",
                      expires_at=None if hours is None else after(hours=hours)) for i, hours in enumerate(expiries)]
    account = given(created(), *grants)
    wallet, now = wallet_of(account), after(hours=at, minutes=30)
    since, until = view_span(wallet, now)
    assert since is None or since <= now
    assert until is None or now < until
    low = since if since is not None else after(hours=0)
    high = until if until is not None else after(hours=100)
    instant = low + (high - low) * offset
    if instant < high:
        assert view_balance(account, wallet, instant) == view_balance(account, wallet, now)
    if until is not None:  # at the span's end a lot stops counting
        assert view_balance(account, wallet, until).credit_balance < view_balance(account, wallet, now).credit_balance


def test_no_expiring_lot_no_bound() -> None:
    account = given(created(), granted("a", "5"))
    assert view_span(wallet_of(account), after(hours=1)) == (None, None)
