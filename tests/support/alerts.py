"""The per-partition alerts streams as written, and the alert transitions a fold of each customer stream says."""

import json
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from domain.events import AnyEvent
from domain.fold import advance_logged
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT, Account, LedgerWrite
from domain.watch import AlertTransition, transitions
from store.eventstore import EventStore
from store.keys import Keys

TRANSACTION_CREATED = "wallet.transaction.created"


@dataclass(frozen=True)
class Notice:
    """One alerts-stream entry: where it is, the key it was emitted under and its decoded JSON payload."""

    partition: int
    entry_id: str
    key: str
    payload: dict[str, Any]

    @property
    def customer(self) -> AccountRef:
        return AccountRef(self.payload["tenant_id"], self.payload["environment_id"], self.payload["customer_id"])

    @property
    def is_transition(self) -> bool:
        return str(self.payload["event_type"]).startswith(("wallet.ongoing_balance.", "wallet.credit_balance."))


async def read_notices(redis: Redis, keys: Keys) -> list[Notice]:
    """Every entry of every partition's alerts stream (XRANGE), partition by partition, in stream order."""
    notices: list[Notice] = []
    for partition in range(keys.partitions):
        entries: Any = await redis.xrange(keys.notices(partition))
        notices.extend(Notice(partition, entry_id.decode(), fields[b"k"].decode(), json.loads(fields[b"a"]))
                       for entry_id, fields in entries)
    return notices


@dataclass(frozen=True)
class Folded:
    """A customer stream folded from zero, event by event: the final account and each transition with its event."""

    account: Account
    transitions: list[tuple[AlertTransition, AnyEvent]]
    events: list[tuple[str, AnyEvent]]
    ledger: list[LedgerWrite]


async def fold_with_transitions(store: EventStore, ref: AccountRef) -> Folded:
    """Fold the whole customer stream (EventStore.read_log) with `advance`, comparing consecutive states."""
    account = EMPTY_ACCOUNT
    found: list[tuple[AlertTransition, AnyEvent]] = []
    ledger: list[LedgerWrite] = []
    log = await store.read_log(ref)
    for position, event in log:
        before, (account, written) = account, advance_logged(account, position, event)
        found.extend((t, event) for t in transitions(before, account, position, event.at))
        ledger.extend(written)
    return Folded(account, found, log, ledger)
