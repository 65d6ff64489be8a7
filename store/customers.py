"""The customer directory: each customer's record lives beside its account (the external id names the account), a
pointer finds it by the internal id, and a per-tenant index by creation time serves search.

The record is the truth. Pointer and index entry are written before it and removed after it, and every read
through them checks the record it finds, so a crash between the steps leaves at worst an entry that reads as
absent, never a customer that cannot be found by its external id or a pointer to someone else."""

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from domain.codec import decode_customer, decode_ref, encode_customer, encode_ref
from domain.customers import Customer, may_be_customer_id, micros
from domain.errors import AlreadyExists, NotFound, ValidationFailed, VersionConflict
from domain.identity import AccountRef
from store.keys import Keys
from store.positions import text
from store.scripts import Scripts

SCAN_LIMIT = 10_000  # customers a search filtering on record fields (email, metadata) may examine
RESOLVED_CACHE = 65_536  # internal ids remembered per process (their account never changes)
WRITE_ATTEMPTS = 5


class Stored(msgspec.Struct, frozen=True):
    customer: Customer
    version: int


class CustomerQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What a search asks for; empty means any. Times are microseconds since the epoch, inclusive."""

    ids: tuple[str, ...] = ()
    external_ids: tuple[str, ...] = ()
    email: str = ""
    metadata: dict[str, str] = {}
    created_from_us: int | None = None
    created_to_us: int | None = None
    newest_first: bool = True
    offset: int = 0
    limit: int = 50

    def matches(self, customer: Customer) -> bool:
        created = micros(customer.created_at)
        return ((not self.ids or customer.id in self.ids)
                and (not self.external_ids or customer.external_id in self.external_ids)
                and (not self.email or customer.email == self.email)
                and all(customer.metadata.get(k) == v for k, v in self.metadata.items())
                and (self.created_from_us is None or created >= self.created_from_us)
                and (self.created_to_us is None or created <= self.created_to_us))


class Found(msgspec.Struct, frozen=True):
    customers: list[Customer]
    total: int


class CustomerDirectory:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.scripts = Scripts(redis)
        self._accounts: dict[tuple[str, str, str], str] = {}

    async def create(self, customer: Customer, tenant_id: str, environment_id: str) -> None:
        """Record a new customer; AlreadyExists (naming the holder) when its external id is taken."""
        ref = AccountRef(tenant_id, environment_id, customer.external_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.customer_pointer(customer.id), encode_ref(ref))
            pipe.zadd(self.keys.customers(tenant_id, environment_id), {customer.id: micros(customer.created_at)})
            await pipe.execute()
        written = await self._write(ref, "create", "", encode_customer(customer))
        if written.done:
            return
        await self._forget(ref, customer.id)
        holder = written.now.customer.id if written.now else ""
        raise AlreadyExists(f"a customer with external_id {customer.external_id} exists",
                            {"external_id": customer.external_id, "customer_id": holder})

    async def by_external_id(self, tenant_id: str, environment_id: str, external_id: str) -> Stored | None:
        raw: Any = await self.redis.hmget(self.keys.customer(AccountRef(tenant_id, environment_id, external_id)),
                                          ["v", "c"])
        return Stored(decode_customer(raw[1]), int(raw[0])) if raw[0] else None

    async def by_id(self, tenant_id: str, environment_id: str, customer_id: str) -> Stored | None:
        ref = await self._pointed(tenant_id, environment_id, customer_id)
        found = None if ref is None else await self.by_external_id(tenant_id, environment_id, ref.customer_id)
        return found if found is not None and found.customer.id == customer_id else None

    async def get(self, tenant_id: str, environment_id: str, customer_id: str) -> Stored:
        found = await self.by_id(tenant_id, environment_id, customer_id)
        if found is None:
            raise NotFound(f"customer {customer_id} not found", {"customer_id": customer_id})
        return found

    async def replace(self, stored: Stored, change: Callable[[Customer], Customer],
                      tenant_id: str, environment_id: str) -> Customer:
        """Apply `change` to the record as stored, again on a fresh read when another writer got there first."""
        for _ in range(WRITE_ATTEMPTS):
            updated = change(stored.customer)
            ref = AccountRef(tenant_id, environment_id, stored.customer.external_id)
            written = await self._write(ref, "replace", str(stored.version), encode_customer(updated))
            if written.done:
                return updated
            if written.now is None:
                raise NotFound(f"customer {stored.customer.id} not found", {"customer_id": stored.customer.id})
            stored = written.now
        raise VersionConflict("the customer changed while it was being updated; retry",
                              {"customer_id": stored.customer.id})

    async def delete(self, stored: Stored, tenant_id: str, environment_id: str) -> None:
        ref = AccountRef(tenant_id, environment_id, stored.customer.external_id)
        if not (await self._write(ref, "delete", str(stored.version), b"")).done:
            raise VersionConflict("the customer changed while it was being deleted; retry",
                                  {"customer_id": stored.customer.id})
        await self._forget(ref, stored.customer.id)

    async def account_of(self, tenant_id: str, environment_id: str, name: str) -> AccountRef:
        """The account a customer is named by: a customer's internal id reaches the account its external id names;
        any other name (an external id, or a name used before customers existed) is the account's own name."""
        if not may_be_customer_id(name):
            return AccountRef(tenant_id, environment_id, name)
        cached = self._accounts.get((tenant_id, environment_id, name))
        if cached is None:
            found = await self.by_id(tenant_id, environment_id, name)
            if found is None:
                return AccountRef(tenant_id, environment_id, name)
            if len(self._accounts) >= RESOLVED_CACHE:
                self._accounts.clear()
            cached = self._accounts[(tenant_id, environment_id, name)] = found.customer.external_id
        return AccountRef(tenant_id, environment_id, cached)

    async def search(self, tenant_id: str, environment_id: str, query: CustomerQuery) -> Found:
        if query.ids or query.external_ids:
            named = await self._named(tenant_id, environment_id, query)
            matching = sorted((c for c in named if query.matches(c)), key=_order_key, reverse=query.newest_first)
            return Found(matching[query.offset:query.offset + query.limit], len(matching))
        if not query.email and not query.metadata:
            return await self._page(tenant_id, environment_id, query)
        return await self._scan(tenant_id, environment_id, query)

    async def _named(self, tenant_id: str, environment_id: str, query: CustomerQuery) -> list[Customer]:
        found: dict[str, Customer] = {}
        for customer_id in query.ids:
            stored = await self.by_id(tenant_id, environment_id, customer_id)
            if stored is not None:
                found[stored.customer.id] = stored.customer
        for external_id in query.external_ids:
            stored = await self.by_external_id(tenant_id, environment_id, external_id)
            if stored is not None:
                found[stored.customer.id] = stored.customer
        return list(found.values())

    async def _page(self, tenant_id: str, environment_id: str, query: CustomerQuery) -> Found:
        index, low, high = self.keys.customers(tenant_id, environment_id), *_bounds(query)
        total: int = await self.redis.zcount(index, low, high)
        ids = await self._index_range(index, query, query.offset, query.limit)
        return Found(await self._load(tenant_id, environment_id, ids), total)

    async def _scan(self, tenant_id: str, environment_id: str, query: CustomerQuery) -> Found:
        index, low, high = self.keys.customers(tenant_id, environment_id), *_bounds(query)
        if await self.redis.zcount(index, low, high) > SCAN_LIMIT:
            raise ValidationFailed(
                f"an email or metadata filter examines at most {SCAN_LIMIT} customers; narrow the search by "
                "start_time/end_time, customer_ids or external_ids", {"limit": SCAN_LIMIT})
        ids = await self._index_range(index, query, 0, SCAN_LIMIT)
        matching = [c for c in await self._load(tenant_id, environment_id, ids) if query.matches(c)]
        return Found(matching[query.offset:query.offset + query.limit], len(matching))

    async def _index_range(self, index: str, query: CustomerQuery, offset: int, count: int) -> list[str]:
        low, high = _bounds(query)
        if query.newest_first:
            raw: Any = await self.redis.zrevrangebyscore(index, high, low, start=offset, num=count)
        else:
            raw = await self.redis.zrangebyscore(index, low, high, start=offset, num=count)
        return [text(member) for member in raw]

    async def _load(self, tenant_id: str, environment_id: str, ids: Sequence[str]) -> list[Customer]:
        loaded = []
        for customer_id in ids:  # pointer then record: two reads in two slots each
            stored = await self.by_id(tenant_id, environment_id, customer_id)
            if stored is not None:
                loaded.append(stored.customer)
        return loaded

    async def _pointed(self, tenant_id: str, environment_id: str, customer_id: str) -> AccountRef | None:
        raw: Any = await self.redis.get(self.keys.customer_pointer(customer_id))
        ref = None if raw is None else decode_ref(raw)
        return ref if ref is not None and (ref.tenant_id, ref.environment_id) == (tenant_id, environment_id) else None

    async def _forget(self, ref: AccountRef, customer_id: str) -> None:
        pointed = await self._pointed(ref.tenant_id, ref.environment_id, customer_id)
        if pointed == ref:
            await self.redis.delete(self.keys.customer_pointer(customer_id))
        await self.redis.zrem(self.keys.customers(ref.tenant_id, ref.environment_id), customer_id)
        self._accounts.pop((ref.tenant_id, ref.environment_id, customer_id), None)

    async def _write(self, ref: AccountRef, mode: str, version: str, encoded: bytes) -> "Written":
        reply: Any = await self.scripts.customer_write(keys=[self.keys.customer(ref)], args=[mode, version, encoded])
        if int(reply[0]):
            return Written(True)
        return Written(False, Stored(decode_customer(reply[2]), int(reply[1])) if int(reply[1]) else None)


class Written(msgspec.Struct, frozen=True):
    """Whether a write was done; if not, the record as it is now (None when there is none)."""

    done: bool
    now: Stored | None = None


def _order_key(customer: Customer) -> tuple[int, str]:
    return micros(customer.created_at), customer.id


def _bounds(query: CustomerQuery) -> tuple[str, str]:
    low = "-inf" if query.created_from_us is None else str(query.created_from_us)
    high = "+inf" if query.created_to_us is None else str(query.created_to_us)
    return low, high
