"""Random histories of wallet, usage and clock operations (hypothesis strategies) and a player that writes them.

Commands go through Accounts.execute (decide on a fresh read, append with expect), as the API sends them. Events
that no committed command decides yet (usage, clock closes and expiries, invoice payments, billing cycles) are
appended through EventStore.append at the stream's head, the way their producers append them.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from api.accounts import Accounts
from domain.clock import due_events
from domain.commands import (
    AnyCommand,
    CreateWallet,
    DebitWallet,
    FreezeWallet,
    TerminateWallet,
    TopUpWallet,
    UnfreezeWallet,
    UpdateWallet,
)
from domain.errors import TallyError
from domain.events import AnyEvent, BillingCycleSet, DebitReason, GrantReason, InvoicePaid, UsageRecorded, WalletType
from domain.identity import AccountRef
from domain.lots import available_credits
from domain.periods import PeriodUnit
from domain.pricing import BillingModel, PriceVersion, Tier
from domain.settings import AlertSettings, AlertThreshold, AutoTopup
from store.eventstore import Dedup, EventStore
from store.ratecard import add_price

# Auto top-up stays disabled: a projector that tops up on its own would append events this history did not.
# Far beyond the wall clock, so the projector's own clock never finds these lots or periods due.
START = datetime(2090, 3, 1, 12, 0, tzinfo=UTC)
CUSTOMERS = ("cust_0", "cust_1", "cust_2")
EVENT_NAMES = ("api_call", "tokens")
CURRENCIES = ("USD", "EUR")
CENT = Decimal("0.01")

credits = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)
rates = st.sampled_from([Decimal(1), Decimal("0.5"), Decimal(2), Decimal("0.03"), Decimal("1.25"), Decimal("7")])
seconds = st.integers(min_value=1, max_value=7200)
fractions = st.decimals(Decimal("0.01"), Decimal("1.2"), places=2)
unit_prices = st.decimals(Decimal(0), Decimal(3), places=3)


@st.composite
def alert_settings(draw: st.DrawFn) -> AlertSettings | None:
    if draw(st.booleans()):
        return None
    condition = draw(st.sampled_from(["below", "above"]))
    values = sorted(draw(st.lists(st.decimals(0, 200, places=1), min_size=1, max_size=3, unique=True)),
                    reverse=condition == "above")
    levels: list[AlertThreshold | None] = [AlertThreshold(threshold=v, condition=condition) for v in values]
    levels += [None] * (3 - len(levels))
    return AlertSettings(alert_enabled=draw(st.booleans()), critical=levels[0], warning=levels[1], info=levels[2])


@dataclass(frozen=True)
class Create:
    customer: str
    currency: str
    wallet_type: WalletType
    rate: Decimal
    topup_rate: Decimal | None
    initial: Decimal
    initial_expiry: int | None
    alerts: AlertSettings | None


@dataclass(frozen=True)
class TopUp:
    pick: int
    credits: Decimal
    by_amount: bool
    reason: GrantReason
    priority: int | None
    expiry: int | None
    key: str | None


@dataclass(frozen=True)
class Debit:
    pick: int
    fraction: Decimal
    reason: DebitReason


@dataclass(frozen=True)
class Update:
    pick: int
    name: str | None
    alerts: AlertSettings | None
    auto_topup: AutoTopup | None
    metadata: dict[str, str] | None


@dataclass(frozen=True)
class Simple:
    """freeze | unfreeze | terminate a wallet; clock: append what time makes due; pay: part of an invoice."""

    pick: int
    kind: str
    fraction: Decimal = Decimal(1)


@dataclass(frozen=True)
class Usage:
    customer: str
    event_name: str
    n: int
    age: int


@dataclass(frozen=True)
class Cycle:
    customer: str
    unit: PeriodUnit
    count: int


@dataclass(frozen=True)
class Price:
    event_name: str
    currency: str
    lookup_key: str
    model: BillingModel
    sum_field: bool
    amount: Decimal
    tiers: tuple[Decimal, Decimal]
    delay: int


@dataclass(frozen=True)
class Archive:
    """The archiver runs (where the world has one): folded history leaves Redis for Parquet segments."""


@dataclass(frozen=True)
class Tick:
    """Time passes; with `clock`, the projector's clock then appends what became due."""

    seconds: int
    clock: bool


creates = st.builds(
    Create, customer=st.sampled_from(CUSTOMERS), currency=st.sampled_from(CURRENCIES),
    wallet_type=st.sampled_from(["PRE_PAID", "POST_PAID"]), rate=rates, topup_rate=st.none() | rates,
    initial=st.just(Decimal(0)) | credits, initial_expiry=st.none() | seconds, alerts=alert_settings(),
)


def price_ops(delay: st.SearchStrategy[int]) -> st.SearchStrategy[Price]:
    return st.builds(Price, event_name=st.sampled_from(EVENT_NAMES), currency=st.sampled_from(CURRENCIES),
                     lookup_key=st.sampled_from(["a", "b"]), model=st.sampled_from(["FLAT_FEE", "PACKAGE", "TIERED"]),
                     sum_field=st.booleans(), amount=unit_prices, tiers=st.tuples(unit_prices, unit_prices),
                     delay=delay)


picks = st.integers(0, 20)
top_ups = st.builds(
    TopUp, pick=picks, credits=credits, by_amount=st.booleans(),
    reason=st.sampled_from(["FREE_CREDIT_GRANT", "SUBSCRIPTION_CREDIT_GRANT", "PURCHASED_CREDIT_DIRECT",
                            "PURCHASED_CREDIT_INVOICED", "PURCHASED_CREDIT_BONUS", "CREDIT_NOTE",
                            "INVOICE_VOID_REFUND"]),
    priority=st.none() | st.integers(0, 3), expiry=st.none() | seconds, key=st.none() | st.sampled_from(["k1", "k2"]),
)
debits = st.builds(Debit, pick=picks, fraction=fractions,
                   reason=st.sampled_from(["MANUAL_BALANCE_DEBIT", "CREDIT_ADJUSTMENT"]))
usages = st.builds(Usage, customer=st.sampled_from(CUSTOMERS), event_name=st.sampled_from(EVENT_NAMES),
                   n=st.integers(0, 40), age=st.integers(0, 7200))
ticks = st.builds(Tick, seconds=seconds | st.integers(86400, 40 * 86400), clock=st.booleans())
operations = st.one_of(
    creates, top_ups, top_ups, debits, debits, usages, usages, ticks, ticks, st.just(Archive()),
    st.builds(Update, pick=picks, name=st.none() | st.text("abcxyz ", max_size=8), alerts=alert_settings(),
              auto_topup=st.none() | st.builds(AutoTopup, enabled=st.just(False), threshold=credits, amount=credits),
              metadata=st.none() | st.dictionaries(st.sampled_from("ab"), st.text("xy"))),
    st.builds(Simple, pick=picks, kind=st.sampled_from(["freeze", "unfreeze", "terminate", "clock", "pay", "pay"]),
              fraction=fractions),
    st.builds(Cycle, customer=st.sampled_from(CUSTOMERS), unit=st.sampled_from(["hour", "day"]),
              count=st.integers(1, 3)),
    price_ops(st.integers(0, 7200)),
)
setups = st.tuples(st.lists(price_ops(st.just(-86400)), min_size=1, max_size=4),
                   st.lists(creates, min_size=1, max_size=4))
histories = st.builds(lambda setup, ops: [*setup[0], *setup[1], *ops], setups,
                      st.lists(operations, min_size=10, max_size=60))


@dataclass
class World:
    """The history being written: its clock, the wallets created so far and how many events were acknowledged."""

    store: EventStore
    now: datetime = START
    wallets: list[tuple[str, AccountRef]] = field(default_factory=list)
    appended: dict[AccountRef, int] = field(default_factory=dict)
    rejected: int = 0
    serial: int = 0
    archive: Callable[[], Awaitable[None]] | None = None

    def next_id(self, kind: str) -> str:
        self.serial += 1
        return f"{kind}_{self.serial:04d}"

    def wallet(self, pick: int) -> tuple[str, AccountRef]:
        return self.wallets[pick % len(self.wallets)]

    def count(self, ref: AccountRef, events: int) -> None:
        if events:
            self.appended[ref] = self.appended.get(ref, 0) + events


def ref_of(customer: str) -> AccountRef:
    return AccountRef("tenant_a", "env_a", customer)


async def execute(world: World, ref: AccountRef, command: AnyCommand, dedup: Dedup | None = None) -> bool:
    """Decide on a fresh read and append, as the API does; a refusal appends nothing (and returns False)."""
    try:
        outcome = await Accounts(world.store, clock=lambda: world.now).execute(ref, command, dedup)
    except TallyError:
        world.rejected += 1
        return False
    if outcome.appended is not None and outcome.appended.status == "appended":
        world.count(ref, len(outcome.appended.positions))
    return True


async def append_at_head(world: World, ref: AccountRef, events: list[AnyEvent], scope: str = "") -> None:
    """Append events no command decides, each once (deduplicated on its id when a scope is given)."""
    for event in events:
        dedup = Dedup(scope, event.id) if scope else None
        appended = await world.store.append(ref, [event], dedup)
        assert appended.status in ("appended", "duplicate"), appended
        world.count(ref, len(appended.positions))


async def create(world: World, op: Create) -> None:
    wallet_id, ref = world.next_id("wallet"), ref_of(op.customer)
    expiry = world.now + timedelta(seconds=op.initial_expiry) if op.initial_expiry else None
    created = await execute(world, ref, CreateWallet(
        event_id=world.next_id("evt"), actor="prop", wallet_id=wallet_id, tenant_id=ref.tenant_id,
        environment_id=ref.environment_id, customer_id=ref.customer_id, currency=op.currency,
        wallet_type=op.wallet_type, conversion_rate=op.rate, topup_conversion_rate=op.topup_rate,
        alert_settings=op.alerts, initial_credits=op.initial, initial_credits_expire_at=expiry,
        initial_transaction_id=world.next_id("wtx"),
    ))
    if created or not world.wallets:  # a refused wallet stays pickable only until one exists
        world.wallets.append((wallet_id, ref))


async def top_up(world: World, op: TopUp) -> None:
    wallet_id, ref = world.wallet(op.pick)
    transaction_id = world.next_id("wtx")
    dedup = Dedup("topup", op.key, transaction_id, wallet_id) if op.key else None
    await execute(world, ref, TopUpWallet(
        event_id=world.next_id("evt"), actor="prop", wallet_id=wallet_id, transaction_id=transaction_id,
        reason=op.reason, credits=None if op.by_amount else op.credits, amount=op.credits if op.by_amount else None,
        priority=op.priority, idempotency_key=op.key,
        expires_at=world.now + timedelta(seconds=op.expiry) if op.expiry else None,
    ), dedup)


async def debit(world: World, op: Debit) -> None:
    """Debit a fraction of what is available now (above 1 it is an overdraft the domain must refuse)."""
    wallet_id, ref = world.wallet(op.pick)
    wallet = (await world.store.read_account(ref)).account.wallets.get(wallet_id)
    available = available_credits(wallet.lots, world.now) if wallet else Decimal(0)
    amount = max((available * op.fraction).quantize(CENT), CENT)
    await execute(world, ref, DebitWallet(event_id=world.next_id("evt"), actor="prop", wallet_id=wallet_id,
                                          transaction_id=world.next_id("wtx"), credits=amount, reason=op.reason))


async def run_clock(world: World, ref: AccountRef) -> None:
    """What the projector's clock appends (deterministic ids, deduplicated), at the history's time."""
    account = (await world.store.read_account(ref)).account
    await append_at_head(world, ref, due_events(account, world.now, timedelta(0)), scope="clock")


async def simple(world: World, op: Simple) -> None:
    wallet_id, ref = world.wallet(op.pick)
    event_id = world.next_id("evt")
    account = (await world.store.read_account(ref)).account
    if op.kind == "clock":
        await run_clock(world, ref)
    elif op.kind == "pay":
        for invoice in account.invoices.values():
            if invoice.unpaid > 0:
                amount = min(invoice.unpaid, max(CENT, (invoice.unpaid * op.fraction).quantize(CENT)))
                await append_at_head(world, ref, [InvoicePaid(id=event_id, at=world.now, invoice_id=invoice.id,
                                                              amount=amount)])
                return
    elif op.kind == "freeze":
        await execute(world, ref, FreezeWallet(event_id=event_id, actor="prop", wallet_id=wallet_id))
    elif op.kind == "unfreeze":
        await execute(world, ref, UnfreezeWallet(event_id=event_id, actor="prop", wallet_id=wallet_id))
    else:
        await execute(world, ref, TerminateWallet(event_id=event_id, actor="prop", wallet_id=wallet_id,
                                                  transaction_id=world.next_id("wtx")))


async def add_version(world: World, op: Price) -> None:
    tiers = (Tier(up_to=Decimal(10), unit_amount=op.tiers[0]), Tier(up_to=None, unit_amount=op.tiers[1]))
    price = PriceVersion(
        id=world.next_id("price"), lookup_key=op.lookup_key, event_name=op.event_name, currency=op.currency,
        aggregation="SUM" if op.sum_field else "COUNT", field="n" if op.sum_field else None,
        billing_model=op.model, amount=op.amount, package_size=Decimal(5), tiers=tiers if op.model == "TIERED" else (),
        effective_from=world.now + timedelta(seconds=op.delay), created_at=world.now,
    )
    await add_price(world.store.redis, world.store.keys, "tenant_a", "env_a", price)


async def play(world: World, ops: list[object]) -> None:
    for op in ops:
        match op:
            case Create():
                await create(world, op)
            case TopUp():
                await top_up(world, op)
            case Debit():
                await debit(world, op)
            case Update():
                await execute(world, world.wallet(op.pick)[1], UpdateWallet(
                    event_id=world.next_id("evt"), actor="prop", wallet_id=world.wallet(op.pick)[0], name=op.name,
                    alert_settings=op.alerts, auto_topup=op.auto_topup, metadata=op.metadata))
            case Simple():
                await simple(world, op)
            case Usage():
                await append_at_head(world, ref_of(op.customer), [UsageRecorded(
                    id=world.next_id("evt"), at=world.now, event_name=op.event_name, external_customer_id=op.customer,
                    timestamp=world.now - timedelta(seconds=op.age), properties={"n": op.n})])
            case Cycle():
                await append_at_head(world, ref_of(op.customer), [BillingCycleSet(
                    id=world.next_id("evt"), at=world.now, anchor=START, unit=op.unit, count=op.count)])
            case Price():
                await add_version(world, op)
            case Archive():
                if world.archive is not None:
                    await world.archive()
            case Tick():
                world.now += timedelta(seconds=op.seconds)
                if op.clock:
                    for customer in CUSTOMERS:
                        await run_clock(world, ref_of(customer))
