"""Reading accounts and executing commands against them, with optimistic concurrency on the customer stream."""

from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from api.auth import Principal
from domain.commands import AnyCommand
from domain.decide import decide
from domain.errors import AccountQuarantined, NotFound, VersionConflict
from domain.events import AnyEvent
from domain.fold import fold
from domain.identity import AccountRef
from domain.state import Account
from store.eventstore import Appended, Dedup, EventStore

ATTEMPTS = 8
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Outcome(msgspec.Struct, frozen=True):
    """The account after the command, and what the append said (a duplicate appends nothing)."""

    account: Account
    appended: Appended | None


class Accounts:
    def __init__(self, store: EventStore, clock: Clock = system_clock) -> None:
        self.store = store
        self.clock = clock
        self._owners: dict[str, AccountRef] = {}

    async def locate_wallet(self, wallet_id: str, caller: Principal) -> AccountRef:
        """The account holding a wallet; another tenant's wallet is as absent as a missing one."""
        ref = self._owners.get(wallet_id)
        if ref is None:
            ref = await self.store.find_wallet(wallet_id)
            if ref is not None:
                self._owners[wallet_id] = ref
        if ref is None or (ref.tenant_id, ref.environment_id) != (caller.tenant_id, caller.environment_id):
            raise NotFound(f"wallet {wallet_id} not found", {"wallet_id": wallet_id})
        return ref

    async def execute(self, ref: AccountRef, command: AnyCommand, dedup: Dedup | None = None) -> Outcome:
        """Decide on a fresh read and append only if the stream has not moved since; retry when it has."""
        for _ in range(ATTEMPTS):
            read = await self.store.read_account(ref)
            if read.quarantined is not None:
                raise quarantined(ref)
            events: list[AnyEvent] = decide(read.account, command, self.clock())
            if not events:
                return Outcome(read.account, None)
            appended = await self.store.append(ref, events, dedup, expect=read.account.position)
            if appended.status == "conflict":
                continue
            if appended.status == "duplicate":
                return Outcome(read.account, appended)
            return Outcome(fold(read.account, zip(appended.positions, events, strict=True)), appended)
        raise VersionConflict("the account kept changing; try again", {"customer_id": ref.customer_id})


def quarantined(ref: AccountRef) -> AccountQuarantined:
    return AccountQuarantined(
        "this account is quarantined: an entry of its history cannot be folded; an operator must retry or drop it "
        "(tally dlq retry / drop)", {"customer_id": ref.customer_id},
    )
