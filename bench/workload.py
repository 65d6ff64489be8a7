"""The synthetic workload: customers with one PRE_PAID wallet each, then a seeded mix of grants and usage."""

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.events import AnyEvent, CreditsGranted, UsageRecorded, WalletCreated
from domain.identity import AccountRef
from domain.pricing import PriceVersion
from store.eventstore import Dedup, EventStore
from store.ratecard import add_price

# The principal `tally api --api-key K` binds K to, so the read bench can use the same accounts.
TENANT, ENVIRONMENT = "tenant_dev", "env_dev"
GRANT_EVERY = 10  # one event in ten is a CreditsGranted (a new lot); the rest are UsageRecorded
# Events are stamped just before the run (µs apart), so no billing period or lot falls due for the projector's
# clock while the bench runs: the clock's own appends would add work that is not part of any figure.
BASE_TIME = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
USAGE_PRICE = PriceVersion(
    id="price_bench_api_call", lookup_key="api_call", event_name="api_call", currency="usd", aggregation="COUNT",
    billing_model="FLAT_FEE", amount=Decimal("0.01"), effective_from=BASE_TIME - timedelta(days=1),
    created_at=BASE_TIME - timedelta(days=1),
)

Item = tuple[AccountRef, AnyEvent, Dedup | None]


def customer_id(i: int) -> str:
    return f"cus_{i:05d}"


def wallet_id(i: int) -> str:
    return f"wal_{i:05d}"


def ref(i: int) -> AccountRef:
    return AccountRef(TENANT, ENVIRONMENT, customer_id(i))


def wallet_created(i: int) -> WalletCreated:
    return WalletCreated(
        id=f"evt_wc_{i:05d}", at=BASE_TIME, wallet_id=wallet_id(i), tenant_id=TENANT, environment_id=ENVIRONMENT,
        customer_id=customer_id(i), currency="usd", wallet_type="PRE_PAID", conversion_rate=Decimal(1),
        topup_conversion_rate=Decimal(1), name="bench wallet", created_by="bench",
    )


def event(tag: str, n: int, i: int, grant: bool) -> AnyEvent:
    """The n-th event of a run, for customer i: a CreditsGranted lot or a UsageRecorded."""
    at = BASE_TIME + timedelta(microseconds=n)
    event_id = f"evt_{tag}_{n:08d}"
    if grant:
        return CreditsGranted(
            id=event_id, at=at, wallet_id=wallet_id(i), transaction_id=f"wtx_{tag}_{n:08d}", credits=Decimal("25"),
            reason="PURCHASED_CREDIT_DIRECT", idempotency_key=event_id, created_by="bench",
        )
    return UsageRecorded(
        id=event_id, at=at, event_name="api_call", external_customer_id=customer_id(i), timestamp=at,
        properties={"tokens": 100 + n % 900, "model": "small"}, source="bench",
    )


def with_dedup(account: AccountRef, item: AnyEvent) -> Item:
    """Every event carries its event id as a dedup key, as the ingest path does."""
    return account, item, Dedup(scope="event", key=item.id)


def mixed(tag: str, count: int, customers: int, seed: int = 7) -> list[Item]:
    """`count` events spread uniformly at random (seeded) over `customers` accounts."""
    rng = random.Random(seed)
    items: list[Item] = []
    for n in range(count):
        i = rng.randrange(customers)
        items.append(with_dedup(ref(i), event(tag, n, i, n % GRANT_EVERY == 0)))
    return items


def per_customer(tag: str, per: int, customers: int, grant_every: int = GRANT_EVERY) -> list[Item]:
    """`per` events for every customer (the k-th is a grant when k % grant_every == 0), round-robin."""
    return [
        with_dedup(ref(i), event(tag, k * customers + i, i, k % grant_every == 0))
        for k in range(per) for i in range(customers)
    ]


async def append_all(store: EventStore, items: Sequence[Item], batch: int = 500) -> None:
    for start in range(0, len(items), batch):
        results = await store.append_each(items[start:start + batch])
        if any(r.status != "appended" for r in results):
            raise RuntimeError("set-up append was refused: " + repr([r for r in results if r.status != "appended"][:3]))


async def create_wallets(store: EventStore, customers: int) -> None:
    """The tenant's rate card (one COUNT price for api_call, so usage is priced in the fold), then one indexed
    PRE_PAID wallet per customer. Set-up, never timed."""
    await add_price(store.redis, store.keys, TENANT, ENVIRONMENT, USAGE_PRICE)
    for start in range(0, customers, 50):
        chunk = range(start, min(customers, start + 50))
        await asyncio.gather(*(store.index_wallet(wallet_id(i), ref(i)) for i in chunk))
    await append_all(store, [with_dedup(ref(i), wallet_created(i)) for i in range(customers)])
