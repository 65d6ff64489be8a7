"""Ledger entries kept apart from the snapshot: two hashes per account and projection generation.

`Keys.ledger(ref)` maps `wallet:seq` to the encoded entry (seq = its place in the wallet's ledger, 0, 1, 2, ...),
`Keys.ledger_ids(ref)` maps `wallet:transaction id` to that seq. Both are written in the step that writes the
snapshot (commit.lua, unquarantine.lua, a rebuild), so the stored ledger always matches the snapshot beside it.

Redis keeps each wallet's newest `keep` entries only (TALLY_LEDGER_KEEP): the seqs from `entries - keep` up. The
step that moves a wallet's window takes the entries it leaves behind out of both hashes (bounded by what the step
added), so the stored ledger is a function of the snapshot and `keep`, and a rebuild writes the same bytes. An
entry that left Redis is still in the log: the events that wrote it stay in the customer stream until the archiver
has made them durable in a segment (store/archive), and reading archive + stream folds them again. A pending entry
also stays in the snapshot (`Wallet.pending_entries`) until it is paid, whatever its age. A page inside the window,
or an entry by id, costs the same whatever the wallet's history; a page past it, or a retried id that left, folds
the customer's whole log from zero (its cost grows with the history: deep pages only).
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from domain.codec import decode_ledger_entry, encode_ledger_entry
from domain.decide import find_wallet
from domain.identity import AccountRef
from domain.ledger import ledgers
from domain.state import EMPTY_ACCOUNT, Account, LedgerEntry, LedgerWrite
from store.entries import fold_log
from store.eventstore import AccountRead, EventStore
from store.keys import Keys, component
from store.positions import is_after, text

DEFAULT_KEEP = 1000
"""Ledger entries Redis keeps per wallet unless TALLY_LEDGER_KEEP says otherwise."""


def entry_field(wallet_id: str, seq: int) -> str:
    return f"{component(wallet_id)}:{seq}"


def id_field(wallet_id: str, transaction_id: str) -> str:
    return f"{component(wallet_id)}:{component(transaction_id)}"


def kept_from(entries: int, keep: int) -> int:
    """The lowest seq Redis keeps of a wallet that has `entries` entries."""
    return max(0, entries - keep)


class LedgerTrim(msgspec.Struct, frozen=True):
    """The seqs `start` up to (not including) `stop` of a wallet leave Redis."""

    wallet_id: str
    start: int
    stop: int


Removal = tuple[str, str, int]
"""A stored entry leaving Redis: its entry field, its id field, its seq."""


def in_window(writes: Iterable[LedgerWrite], account: Account, keep: int) -> list[LedgerWrite]:
    """The writes Redis keeps once the account is `account`: those inside their wallet's window."""
    floors = {wallet_id: kept_from(wallet.entries, keep) for wallet_id, wallet in account.wallets.items()}
    return [write for write in writes if write.entry.seq >= floors.get(write.wallet_id, 0)]


def bound_ledger(before: Account, after: Account, writes: Iterable[LedgerWrite],
                 keep: int) -> tuple[tuple[LedgerWrite, ...], tuple[LedgerTrim, ...]]:
    """What a step from `before` to `after` stores (the writes inside the window) and which seqs its windows
    moved past (the stored ones among them are removed with it). A pending entry rewritten below the window is
    not stored again: the snapshot holds it while pending, the log afterwards."""
    trims = []
    for wallet_id, wallet in after.wallets.items():
        old = before.wallets.get(wallet_id)
        start, stop = kept_from(old.entries if old else 0, keep), kept_from(wallet.entries, keep)
        if stop > start:
            trims.append(LedgerTrim(wallet_id, start, stop))
    return tuple(in_window(writes, after, keep)), tuple(trims)


async def removals(redis: Redis, keys: Keys,
                   trims: Sequence[tuple[AccountRef, Sequence[LedgerTrim]]]) -> list[list[Removal]]:
    """Per account, the stored entries its trims take out (read in one round trip: a removal names the entry's
    id field, which only the stored entry knows). Seqs never stored (written and left in the same step) are
    skipped."""
    wanted = [[(trim.wallet_id, seq) for trim in account_trims for seq in range(trim.start, trim.stop)]
              for _, account_trims in trims]
    if not any(wanted):
        return [[] for _ in trims]
    async with redis.pipeline(transaction=False) as pipe:
        for (ref, _), fields in zip(trims, wanted, strict=True):
            if fields:
                pipe.hmget(keys.ledger(ref), [entry_field(wallet_id, seq) for wallet_id, seq in fields])
        replies: list[Any] = list(await pipe.execute())
    found: list[list[Removal]] = []
    for fields in wanted:
        blobs = replies.pop(0) if fields else []
        found.append([(entry_field(wallet_id, seq), id_field(wallet_id, decode_ledger_entry(blob).id), seq)
                      for (wallet_id, seq), blob in zip(fields, blobs, strict=True) if blob])
    return found


def ledger_args(writes: Sequence[LedgerWrite], removed: Sequence[Removal] = ()) -> list[Any]:
    """What the commit scripts take for one account: the count, then per write entry field, entry, id field, seq;
    then the count of removals, then per removal entry field, id field, seq."""
    args: list[Any] = [len(writes)]
    for write in writes:
        entry = write.entry
        args.extend((entry_field(write.wallet_id, entry.seq), encode_ledger_entry(entry),
                     id_field(write.wallet_id, entry.id), entry.seq))
    args.append(len(removed))
    for removal in removed:
        args.extend(removal)
    return args


def ledger_mapping(writes: Iterable[LedgerWrite]) -> tuple[dict[str, bytes], dict[str, int]]:
    """The two hashes' fields for a rebuild (a later write of a seq replaces an earlier one)."""
    entries: dict[str, bytes] = {}
    ids: dict[str, int] = {}
    for write in writes:
        entries[entry_field(write.wallet_id, write.entry.seq)] = encode_ledger_entry(write.entry)
        ids[id_field(write.wallet_id, write.entry.id)] = write.entry.seq
    return entries, ids


async def stored_entries(
    redis: Redis, keys: Keys, ref: AccountRef, wallet_id: str, seqs: Sequence[int]
) -> list[LedgerEntry | None]:
    """The stored entries of these seqs (None where nothing is stored), in the order asked."""
    if not seqs:
        return []
    raw: Any = await redis.hmget(keys.ledger(ref), [entry_field(wallet_id, seq) for seq in seqs])
    return [decode_ledger_entry(blob) if blob else None for blob in raw]


async def stored_entry(
    redis: Redis, keys: Keys, ref: AccountRef, wallet_id: str, transaction_id: str
) -> LedgerEntry | None:
    """The stored entry of a transaction id (None when it is not stored)."""
    seq: Any = await redis.hget(keys.ledger_ids(ref), id_field(wallet_id, transaction_id))
    if seq is None:
        return None
    found = await stored_entries(redis, keys, ref, wallet_id, [int(text(seq))])
    return found[0]


def queue_ledger(pipe: Pipeline, keys: Keys, ref: AccountRef, writes: Iterable[LedgerWrite], account: Account,
                 keep: int) -> None:
    """Queue on `pipe` the replacement of the account's stored ledger by the part Redis keeps of the one `writes`
    leave, `account` being the fold they came from (a rebuild)."""
    pipe.delete(keys.ledger(ref), keys.ledger_ids(ref))
    for key, fields in ledger_hashes(keys, ref, writes, account, keep):
        pipe.hset(key, mapping=fields)


def ledger_hashes(keys: Keys, ref: AccountRef, writes: Iterable[LedgerWrite], account: Account, keep: int,
                  chunk: int = 1000) -> list[tuple[str, Mapping[Any, bytes | int]]]:
    """The HSETs (key, fields) that fill the account's emptied ledger hashes with the part Redis keeps of the
    ledger `writes` leave, `account` being their fold: at most `chunk` fields each."""
    entries, ids = ledger_mapping(in_window(writes, account, keep))
    hashes: list[tuple[str, Mapping[Any, bytes | int]]] = []
    mappings: list[tuple[str, Mapping[Any, bytes | int]]] = [(keys.ledger(ref), entries), (keys.ledger_ids(ref), ids)]
    for key, mapping in mappings:
        if len(mapping) <= chunk:
            hashes += [(key, mapping)] if mapping else []
            continue
        fields = list(mapping.items())
        hashes += [(key, dict(fields[start:start + chunk])) for start in range(0, len(fields), chunk)]
    return hashes


async def from_log(store: EventStore, ref: AccountRef, read: AccountRead, wallet_id: str) -> list[LedgerEntry]:
    """The wallet's whole ledger (oldest first) as of `read`: the customer's log (archive, then stream) folded from
    zero up to the position `read` reflects. Its cost grows with the account's history."""
    position = read.account.position
    log = [entry for entry in await store.read_raw_log(ref) if not is_after(entry.position, position)]
    folded = fold_log(EMPTY_ACCOUNT, log, store.rate_cards)
    if folded.failed is not None:
        raise LookupError(f"the log of wallet {wallet_id} cannot be folded at {folded.failed.position}: "
                          f"{folded.reason}")
    return ledgers(folded.ledger).get(wallet_id, [])


async def find_entry(store: EventStore, ref: AccountRef, wallet_id: str,
                     transaction_id: str) -> tuple[AccountRead, LedgerEntry | None]:
    """The account as read now and the entry of `transaction_id` in it (None when it has none), by id: the
    account's pending entries, then what folding the tail wrote, then the stored ledger, then (an entry that left
    Redis: a retry of an old idempotency key) the log folded from zero."""
    keys = store.keys
    read = await store.read_account(ref)
    wallet = find_wallet(read.account, wallet_id)
    entry = next((e for e in wallet.pending_entries if e.id == transaction_id), None)
    if entry is None:
        entry = next((w.entry for w in reversed(read.ledger)
                      if w.wallet_id == wallet_id and w.entry.id == transaction_id), None)
    if entry is None:
        entry = await stored_entry(store.redis, keys, ref, wallet_id, transaction_id)
    if entry is None and wallet.entries > 0:
        entry = next((e for e in reversed(await from_log(store, ref, read, wallet_id)) if e.id == transaction_id), None)
    return read, entry


class StoredLedger(msgspec.Struct, frozen=True):
    """An account's two ledger hashes as stored (field -> value)."""

    entries: dict[str, bytes]
    ids: dict[str, bytes]


async def load_with_snapshot(redis: Redis, keys: Keys, ref: AccountRef) -> tuple[list[Any], StoredLedger]:
    """The snapshot hash's p, s, q and the stored ledger, read together (one transaction: they match)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hmget(keys.snapshot(ref), ["p", "s", "q"])
        pipe.hgetall(keys.ledger(ref))
        pipe.hgetall(keys.ledger_ids(ref))
        snapshot, entries, ids = await pipe.execute()
    return snapshot, StoredLedger({text(k): v for k, v in entries.items()}, {text(k): v for k, v in ids.items()})


def _shown_fields(blob: bytes) -> dict[str, str]:
    return {name: repr(value) for name, value in msgspec.structs.asdict(decode_ledger_entry(blob)).items()}


def ledger_differences(stored: StoredLedger, writes: Iterable[LedgerWrite], account: Account,
                       keep: int) -> list[tuple[str, str, str]]:
    """(field, stored, folded) wherever the stored ledger and the part Redis keeps of the one `writes` leave
    (`account` being their fold) disagree, entry field by entry field; an entry missing on one side is one
    difference. Entries that left Redis are not differences: the log holds them."""
    entries, ids = ledger_mapping(in_window(writes, account, keep))
    found: list[tuple[str, str, str]] = []
    for field in sorted(set(stored.entries) | set(entries)):
        have, want = stored.entries.get(field), entries.get(field)
        if have is None or want is None:
            found.append((f"ledger.{field}", repr(have and decode_ledger_entry(have)),
                          repr(want and decode_ledger_entry(want))))
        elif have != want:  # different bytes: different fields, or one entry in an older encoding (domain/codec.py)
            left, right = _shown_fields(have), _shown_fields(want)
            found.extend((f"ledger.{field}.{name}", left[name], right[name])
                         for name in left if left[name] != right[name])
    for field in sorted(set(stored.ids) | set(ids)):
        have_seq, want_seq = stored.ids.get(field), ids.get(field)
        if (None if have_seq is None else int(have_seq)) != want_seq:
            found.append((f"ledger-ids.{field}", repr(have_seq), repr(want_seq)))
    return found
