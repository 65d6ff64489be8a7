"""Reading accounts and executing commands against them: per-account turns in the process, optimistic
concurrency on the customer stream between processes."""

import time
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime

import msgspec

from api.auth import Principal
from api.balance_memo import BalanceMemo
from api.turns import Turns, Waiting
from domain.commands import AnyCommand
from domain.customers import may_be_customer_id
from domain.decide import decide
from domain.errors import AccountBusy, AccountQuarantined, InvalidOperation, NotFound, TallyError, ValidationFailed
from domain.events import AnyEvent
from domain.fold import fold, fold_logged
from domain.identity import AccountRef
from domain.state import Account, LedgerWrite
from store.batches import Group, append_batch
from store.customers import CustomerDirectory
from store.eventstore import Appended, Dedup, EventStore

DEADLINE_SECONDS = 5.0
KNOWN_SECONDS = 1.0
KNOWN_LIMIT = 10_000
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Outcome(msgspec.Struct, frozen=True):
    """The account after the command, what the append said (a duplicate appends nothing) and the ledger changes
    the command's events made."""

    account: Account
    appended: Appended | None
    ledger: tuple[LedgerWrite, ...] = ()


Order = tuple[AnyCommand, Dedup | None]
Waiter = Waiting[Order, Outcome]


class Known(msgspec.Struct, frozen=True):
    """An account as this process knows it, and when its quarantine marker was last read."""

    account: Account
    read_at: float
    fresh: bool = True


class Step(msgspec.Struct, frozen=True):
    """What one command of a batch comes to: events to append, none, or a refusal."""

    waiting: Waiter
    events: Sequence[AnyEvent] = ()
    refusal: TallyError | None = None


class Accounts:
    def __init__(self, store: EventStore, clock: Clock = system_clock,
                 deadline_seconds: float = DEADLINE_SECONDS) -> None:
        self.store = store
        self.clock = clock
        self.customers = CustomerDirectory(store.redis, store.keys)
        self.deadline_seconds = deadline_seconds
        self._owners: dict[tuple[str, str, str], AccountRef] = {}
        self._known: dict[AccountRef, Known] = {}
        self._turns: Turns[AccountRef, Order, Outcome] = Turns(self._serve, _idempotency_token)
        self.balances = BalanceMemo()  # encoded balance responses (api/balances.py)

    async def locate_wallet(self, wallet_id: str, caller: Principal) -> AccountRef:
        """The account holding a wallet; another tenant's wallet is as absent as a missing one.

        Only wallets the caller may see are remembered (per tenant and environment), so another tenant's wallet
        and a missing id take the same path, one index read, and answer the same 404 in the same time."""
        owner = (caller.tenant_id, caller.environment_id, wallet_id)
        ref = self._owners.get(owner)
        if ref is None:
            ref = await self.store.find_wallet(wallet_id)
            if ref is None or (ref.tenant_id, ref.environment_id) != owner[:2]:
                raise NotFound(f"wallet {wallet_id} not found", {"wallet_id": wallet_id})
            self._owners[owner] = ref
        return ref

    async def event_account(self, ref: AccountRef, external_id: str) -> AccountRef:
        """The account a usage event reaches: a customer's internal id reaches the account its external id names;
        any other name is the account's own. An event whose external id names another customer is refused."""
        if not may_be_customer_id(ref.customer_id):  # the common case, on every ingested event: nothing to look up
            return ref
        resolved = await self.customers.account_of(ref.tenant_id, ref.environment_id, ref.customer_id)
        if resolved != ref and external_id and external_id != resolved.customer_id:
            raise ValidationFailed(f"customer_id {ref.customer_id} is the customer with external id "
                                   f"{resolved.customer_id}, not {external_id}",
                                   {"customer_id": ref.customer_id, "external_customer_id": external_id})
        return resolved

    async def wallet_owner(self, caller: Principal, customer_id: str, external_id: str) -> tuple[AccountRef, str]:
        """The account a new wallet belongs to and the customer id it shows: the customer's internal id when the
        customer exists (named either way), else the name given, as before customers existed."""
        tenant, environment = caller.tenant_id, caller.environment_id
        if customer_id:
            ref = await self.event_account(AccountRef(tenant, environment, customer_id), external_id)
            return ref, customer_id
        found = await self.customers.by_external_id(tenant, environment, external_id)
        return AccountRef(tenant, environment, external_id), found.customer.id if found else external_id

    async def execute(self, ref: AccountRef, command: AnyCommand, dedup: Dedup | None = None) -> Outcome:
        """Run the command in the account's turn (api/turns.py): in this process, the commands waiting for one
        account are decided in sequence, each on the account as the ones before it leave it, and appended
        together in one step guarded by the position they were decided on. Another process moving the stream
        sends them back to line, to be read again and retried until the deadline (then AccountBusy, a 503:
        nothing was written). No 409 for contention.

        An idempotency key already used never runs twice and is never refused: the append checks every key of
        what it appends (a taken one answers its original: the route returns that transaction, or a 409 for
        another body), and a command that appends nothing looks its key up before it is answered. The new
        events are folded before they are appended: a command whose events cannot be folded is a 4xx.
        """
        waiting: Waiter = Waiting((command, dedup), time.monotonic() + self.deadline_seconds)
        return await self._turns.wait_turn(ref, waiting)

    async def _serve(self, ref: AccountRef, batch: list[Waiter]) -> list[Waiter]:
        """Decide each command in order on the account, append them in one step; returns what lost a race."""
        batch = [waiting for waiting in batch if not _expired(waiting, ref)]
        if not batch:
            return []
        known = await self._account(ref, batch)
        if known is None:
            return []
        steps = self._decide(known.account, batch)
        if not known.fresh and any(not step.events for step in steps):
            # A refusal or a no-op is answered on a fresh read only: the account as this process left it may miss
            # another writer's events (another API process, the projector's clock), which an append's guard
            # would catch but an answer that appends nothing would not.
            known = await self._read(ref, batch)
            if known is None:
                return []
            steps = self._decide(known.account, batch)
        lost = await self._append(ref, known, steps)
        for waiting in lost:
            waiting.losses += 1
        return lost

    async def _account(self, ref: AccountRef, batch: list[Waiter]) -> Known | None:
        """The account as this process last left it (its appends are guarded by that position, so a stale one
        only costs a lost race), re-read when unknown or older than KNOWN_SECONDS (a quarantine marker is not
        in the stream). None when it is quarantined: the batch is answered."""
        known = self._known.pop(ref, None)
        if known is not None and time.monotonic() - known.read_at < KNOWN_SECONDS:
            return msgspec.structs.replace(known, fresh=False)
        return await self._read(ref, batch)

    async def _read(self, ref: AccountRef, batch: list[Waiter]) -> Known | None:
        """The account read now; None when it is quarantined (the batch is answered)."""
        read = await self.store.read_account(ref)
        if read.quarantined is not None:
            for waiting in batch:
                waiting.fail(quarantined(ref))
            return None
        return Known(read.account, time.monotonic())

    def _remember(self, ref: AccountRef, known: Known) -> None:
        if len(self._known) >= KNOWN_LIMIT:
            self._known.clear()
        self._known[ref] = known

    def _decide(self, account: Account, batch: list[Waiter]) -> list[Step]:
        """Each command decided on the account as the ones before it in the batch leave it (in their order)."""
        now, steps = self.clock(), []
        for waiting in batch:
            try:
                events, account = decided(account, waiting.item[0], now)
            except TallyError as exc:
                steps.append(Step(waiting, refusal=exc))
                continue
            steps.append(Step(waiting, events=events))
        return steps

    async def _append(self, ref: AccountRef, known: Known, steps: list[Step]) -> list[Waiter]:
        """Append every step's events in one step guarded by the account's position, then answer the steps in
        order (each reply shows the account right after its own command). When the stream moved, or a key
        turns out taken, nothing was appended: the steps go back to line (a taken key answers its own first)."""
        groups = [Group(step.events, step.waiting.item[1]) for step in steps if step.events]
        appended = await append_batch(self.store, ref, groups, known.account.position) if groups else None
        if appended is not None and appended.status == "conflict":
            return [step.waiting for step in steps]
        if appended is not None and appended.status == "duplicate":
            self._remember(ref, known)
            taken = [step for step in steps if step.events][appended.group].waiting
            taken.answer(await self._duplicate(ref, Appended("duplicate", seen=appended.seen)))
            return [step.waiting for step in steps if not step.waiting.answered]
        account, positions = known.account, iter(appended.positions if appended is not None else ())
        for step in steps:
            if step.events:
                ids = next(positions)
                account, written = fold_logged(account, zip(ids, step.events, strict=True))
                step.waiting.answer(Outcome(account, Appended("appended", ids), tuple(written)))
        if appended is None or not appended.contended:  # contended: read before deciding, like the others
            self._remember(ref, Known(account, known.read_at))
        for step in steps:
            if not step.events:
                await self._answer(ref, step, account)
        return []

    async def _answer(self, ref: AccountRef, step: Step, account: Account) -> None:
        """A step that appends nothing. A key already used answers its original first (the script checks the
        keys of what it appends), so a retry is never refused by a rule the first request passed."""
        dedup = step.waiting.item[1]
        seen = None if dedup is None else await self.store.seen(ref, dedup)
        if seen is not None:
            step.waiting.answer(await self._duplicate(ref, Appended("duplicate", seen=seen)))
        elif step.refusal is not None:
            step.waiting.fail(step.refusal)
        else:
            step.waiting.answer(Outcome(account, None))

    async def _duplicate(self, ref: AccountRef, appended: Appended) -> Outcome:
        """The account as it is now, which holds the original transaction of a retried key."""
        read = await self.store.read_account(ref)
        return Outcome(read.account, appended)


def _idempotency_token(order: Order) -> Hashable | None:
    dedup = order[1]
    return None if dedup is None else (dedup.scope, dedup.key, dedup.wallet_id)


def _expired(waiting: Waiter, ref: AccountRef) -> bool:
    if time.monotonic() < waiting.deadline:
        return False
    waiting.fail(AccountBusy(
        "the account is taking commands from other API processes faster than this one got a turn; nothing was "
        "written: retry with the same idempotency key", {"customer_id": ref.customer_id, "lost_races": waiting.losses},
    ))
    return True


def decided(account: Account, command: AnyCommand, now: datetime) -> tuple[Sequence[AnyEvent], Account]:
    """decide, then fold the new events onto the account to prove they fold: the events and the account after
    them (their positions are placeholders; deciding reads none)."""
    try:
        events: list[AnyEvent] = decide(account, command, now)
    except (ArithmeticError, ValueError) as exc:
        raise _out_of_bounds(exc) from exc
    if not events:
        return events, account
    try:
        return events, fold(account, ((account.position, event) for event in events))
    except (ArithmeticError, ValueError) as exc:
        raise _out_of_bounds(exc) from exc
    except TallyError as exc:
        raise InvalidOperation(f"the request cannot be applied: {exc.message}", exc.details) from exc


def _out_of_bounds(exc: Exception) -> ValidationFailed:
    return ValidationFailed("the request leads to a value out of bounds", {"error": type(exc).__name__})


def quarantined(ref: AccountRef) -> AccountQuarantined:
    return AccountQuarantined(
        "this account is quarantined: an entry of its history cannot be folded; an operator must retry or drop it "
        "(tally dlq retry / drop)", {"customer_id": ref.customer_id},
    )
