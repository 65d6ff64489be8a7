"""Reading accounts and executing commands against them, with optimistic concurrency on the customer stream."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec

from api.auth import Principal
from domain.commands import AnyCommand
from domain.decide import decide
from domain.errors import AccountQuarantined, InvalidOperation, NotFound, TallyError, ValidationFailed, VersionConflict
from domain.events import AnyEvent
from domain.fold import fold, fold_logged
from domain.identity import AccountRef
from domain.state import Account, LedgerWrite
from store.eventstore import Appended, Dedup, EventStore

ATTEMPTS = 8
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Outcome(msgspec.Struct, frozen=True):
    """The account after the command, what the append said (a duplicate appends nothing) and the ledger changes
    the command's events made."""

    account: Account
    appended: Appended | None
    ledger: tuple[LedgerWrite, ...] = ()


class Accounts:
    def __init__(self, store: EventStore, clock: Clock = system_clock) -> None:
        self.store = store
        self.clock = clock
        self._owners: dict[tuple[str, str, str], AccountRef] = {}

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

    async def execute(self, ref: AccountRef, command: AnyCommand, dedup: Dedup | None = None) -> Outcome:
        """Decide on a fresh read and append only if the stream has not moved since; retry when it has.

        An idempotency key already used is answered before deciding (the route returns the original transaction
        or a 409), so a retry is never refused by a rule the first request passed. The new events are folded
        before they are appended: a command whose events cannot be folded is a 4xx and writes nothing.
        """
        for _ in range(ATTEMPTS):
            read = await self.store.read_account(ref)
            if read.quarantined is not None:
                raise quarantined(ref)
            # Read first, then the marker: it is written with the events, so a marker missed here means the
            # events were not in the read either, and the append below then finds the marker (a duplicate).
            if dedup is not None and (seen := await self.store.seen(ref, dedup)) is not None:
                return await self._duplicate(ref, Appended("duplicate", seen=seen))
            events = checked_events(read.account, command, self.clock())
            if not events:
                return Outcome(read.account, None)
            appended = await self.store.append(ref, events, dedup, expect=read.account.position)
            if appended.status == "conflict":
                continue
            if appended.status == "duplicate":
                return await self._duplicate(ref, appended)
            account, written = fold_logged(read.account, zip(appended.positions, events, strict=True))
            return Outcome(account, appended, tuple(written))
        raise VersionConflict("the account kept changing; try again", {"customer_id": ref.customer_id})

    async def _duplicate(self, ref: AccountRef, appended: Appended) -> Outcome:
        """The account as it is now, which holds the original transaction of a retried key."""
        read = await self.store.read_account(ref)
        return Outcome(read.account, appended)


def checked_events(account: Account, command: AnyCommand, now: datetime) -> Sequence[AnyEvent]:
    """decide, then fold the new events onto the account (positions are placeholders) to prove they fold."""
    try:
        events: list[AnyEvent] = decide(account, command, now)
    except (ArithmeticError, ValueError) as exc:
        raise _out_of_bounds(exc) from exc
    try:
        fold(account, ((account.position, event) for event in events))
    except (ArithmeticError, ValueError) as exc:
        raise _out_of_bounds(exc) from exc
    except TallyError as exc:
        raise InvalidOperation(f"the request cannot be applied: {exc.message}", exc.details) from exc
    return events


def _out_of_bounds(exc: Exception) -> ValidationFailed:
    return ValidationFailed("the request leads to a value out of bounds", {"error": type(exc).__name__})


def quarantined(ref: AccountRef) -> AccountQuarantined:
    return AccountQuarantined(
        "this account is quarantined: an entry of its history cannot be folded; an operator must retry or drop it "
        "(tally dlq retry / drop)", {"customer_id": ref.customer_id},
    )
