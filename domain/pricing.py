"""The rate card: immutable, effective-dated price versions, and what a quantity of usage costs under each."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from domain.money import ZERO, exact, parse_quantity
from domain.price_versions import Aggregation as Aggregation
from domain.price_versions import BillingModel as BillingModel
from domain.price_versions import PriceVersion as PriceVersion
from domain.price_versions import Tier as Tier
from domain.price_versions import TierMode as TierMode

ONE = Decimal(1)  # what one event adds under a COUNT price (immutable: one object serves every event)


def in_force(versions: Iterable[PriceVersion], event_name: str, at: datetime) -> list[PriceVersion]:
    """For each lookup key of `event_name`, the version with the latest effective_from not after `at`."""
    chosen: dict[str, PriceVersion] = {}
    for version in versions:
        if version.event_name != event_name or version.effective_from > at:
            continue
        current = chosen.get(version.lookup_key)
        if current is None or (version.effective_from, version.created_at, version.id) > (
            current.effective_from, current.created_at, current.id
        ):
            chosen[version.lookup_key] = version
    if len(chosen) < 2:  # the usual case: one lookup key, nothing to order
        return list(chosen.values())
    return sorted(chosen.values(), key=lambda v: v.lookup_key)


class InForceSpan:
    """`in_force` for one price list and event name, answered again without a look while the instant asked stays
    between the effective_from of the versions around the instant it was last looked up at (`since` <= at <
    `until`; None: unbounded): no version of that name starts or stops being chosen in between. A usage run asks
    it per event; the versions are the rate card's decoded tuple, the same object for every entry naming it."""

    def __init__(self) -> None:
        self.versions: tuple[PriceVersion, ...] | None = None
        self.event_name = ""
        self.since: datetime | None = None
        self.until: datetime | None = None
        self.chosen: list[PriceVersion] = []

    def at(self, versions: tuple[PriceVersion, ...], event_name: str, at: datetime) -> list[PriceVersion]:
        """What `in_force(versions, event_name, at)` returns (the same list object while the answer holds: callers
        only read it)."""
        if (versions is self.versions and event_name == self.event_name
                and (self.since is None or self.since <= at) and (self.until is None or at < self.until)):
            return self.chosen
        chosen = in_force(versions, event_name, at)
        since: datetime | None = None
        until: datetime | None = None
        for version in versions:
            if version.event_name != event_name:
                continue
            start = version.effective_from
            if start <= at:
                since = start if since is None or start > since else since
            elif until is None or start < until:
                until = start
        self.versions, self.event_name, self.since, self.until, self.chosen = versions, event_name, since, until, chosen
        return self.chosen


def quantity_of(price: PriceVersion, properties: Mapping[str, str | int | float]) -> Decimal | None:
    """How much one event adds under `price`; None when its filters exclude it or its SUM field is not a quantity
    (see parse_quantity: not a number, or out of bounds): such an event is unpriced for this price, never an error."""
    for name, allowed in price.filters.items():
        if str(properties.get(name, "")) not in allowed:
            return None
    if price.aggregation == "COUNT":
        return ONE
    value = properties.get(price.field or "")
    if value is None or isinstance(value, bool):
        return None
    try:
        return parse_quantity(value)
    except ValueError:
        return None


@exact
def charge(price: PriceVersion, quantity: Decimal) -> Decimal:
    """The amount, in the price's currency, of `quantity` units in one period (exact, not rounded)."""
    if quantity <= 0:
        return ZERO
    if price.billing_model == "FLAT_FEE":
        return price.amount * quantity
    if price.billing_model == "PACKAGE":
        packages, rest = divmod(quantity, price.package_size)  # exact: whole packages and what is left over
        return price.amount * (packages + (1 if price.round_up and rest else 0))
    if price.tier_mode == "VOLUME":
        return _volume(price.tiers, quantity)
    return _graduated(price.tiers, quantity)


def _graduated(tiers: tuple[Tier, ...], quantity: Decimal) -> Decimal:
    total = ZERO
    floor = ZERO
    for tier in tiers:
        if quantity <= floor:
            break
        ceiling = quantity if tier.up_to is None else min(quantity, tier.up_to)
        total += (ceiling - floor) * tier.unit_amount + tier.flat_amount
        if tier.up_to is None:
            break
        floor = tier.up_to
    return total


def _volume(tiers: tuple[Tier, ...], quantity: Decimal) -> Decimal:
    for tier in tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            return quantity * tier.unit_amount + tier.flat_amount
    last = tiers[-1]
    return quantity * last.unit_amount + last.flat_amount


def check_price(price: PriceVersion) -> list[str]:
    """What is wrong with a price definition; empty when it is sound."""
    problems: list[str] = []
    if price.aggregation == "SUM" and not price.field:
        problems.append("SUM aggregation needs a field")
    if price.package_size <= 0:
        problems.append("transform_quantity.divide_by must be positive")
    if price.billing_model == "TIERED":
        if not price.tiers:
            problems.append("TIERED pricing needs tiers")
        limits = [t.up_to for t in price.tiers]
        if any(limit is None for limit in limits[:-1]) or (limits and limits[-1] is not None):
            problems.append("the last tier, and only the last, must have no up_to")
        bounded = [limit for limit in limits if limit is not None]
        if bounded != sorted(set(bounded)) or any(limit <= 0 for limit in bounded):
            problems.append("tier up_to values must be positive and strictly increasing")
    if price.amount < 0 or any(t.unit_amount < 0 or t.flat_amount < 0 for t in price.tiers):
        problems.append("amounts cannot be negative")
    return problems
