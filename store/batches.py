"""Group commit: the events of several commands on one customer, appended in one step (store/lua/append_batch.lua),
all or nothing, guarded by the position the stream must still end at; each command keeps its own dedup key."""

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from domain.codec import encode_event, encode_ref
from domain.events import AnyEvent, UsageRecorded
from domain.identity import AccountRef
from store.eventstore import Dedup, EventStore
from store.positions import text

CONTENDED_MS = 500


class Group(msgspec.Struct, frozen=True):
    """The events of one command (at least one; no usage: usage carries rate cards and takes store.append)."""

    events: Sequence[AnyEvent]
    dedup: Dedup | None = None


class BatchAppended(msgspec.Struct, frozen=True):
    """appended: `positions[i]` are group i's; duplicate: group `group`'s key was seen (`seen`), nothing appended;
    conflict: the stream ended elsewhere (`seen` = its last id), nothing appended. `contended`: another process
    lost a race on the account within CONTENDED_MS."""

    status: Literal["appended", "duplicate", "conflict"]
    positions: tuple[tuple[str, ...], ...] = ()
    group: int = 0
    seen: str = ""
    contended: bool = False


async def append_batch(store: EventStore, ref: AccountRef, groups: Sequence[Group], expect: str) -> BatchAppended:
    partition = store.keys.partition_of(ref)
    keys = [store.keys.log(ref), store.keys.feed(partition), store.keys.accounts(partition), store.keys.contended(ref)]
    args: list[Any] = [encode_ref(ref), store.dedup_ttl_seconds, expect, CONTENDED_MS]
    for group in groups:
        if not group.events or any(isinstance(event, UsageRecorded) for event in group.events):
            raise ValueError("a group holds at least one event and no usage")
        dedup_index = 0
        if group.dedup is not None:
            keys.append(store.keys.dedup(ref, group.dedup.scope, group.dedup.key, group.dedup.wallet_id))
            dedup_index = len(keys)
        args += [len(group.events), dedup_index, group.dedup.value if group.dedup else ""]
        args.extend(encode_event(event) for event in group.events)
    return _batch_appended(await store.scripts.append_batch(keys=keys, args=args, wait=store.replicated))


def _batch_appended(reply: Sequence[Any]) -> BatchAppended:
    code = int(reply[0])
    if code == 1:
        return BatchAppended("appended", tuple(tuple(text(p) for p in ids) for ids in reply[1]),
                             contended=bool(int(reply[2])))
    if code == 0:
        return BatchAppended("duplicate", group=int(reply[1]) - 1, seen=text(reply[2]))
    return BatchAppended("conflict", seen=text(reply[1]))
