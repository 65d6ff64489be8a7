"""Pages of one wallet's ledger: newest first from a cursor (the plain list), or a filtered scan in either order.

Entries come from what folding the unfolded tail wrote, the account's pending entries, the stored ledger (Redis keeps
each wallet's newest TALLY_LEDGER_KEEP, store/ledger.py) and, for a seq that left Redis, the customer's log (archive
+ stream) folded from zero once per request. A filtered scan examines at most `budget` entries per request: when it
runs out before its page is full it says where to continue (`next_seq`) instead of reading on, so no request reads
more than its budget of entries (plus one fold of the log when it reaches past the kept window).
"""

from collections.abc import Callable

import msgspec

from domain.decide import find_wallet
from domain.identity import AccountRef
from domain.state import LedgerEntry, Wallet
from store.eventstore import AccountRead, EventStore
from store.ledger import from_log, stored_entries

CHUNK = 500
"""Entries fetched per HMGET while scanning."""


class LedgerSource:
    """Entries of one wallet by seq, as of one read of the account."""

    def __init__(self, store: EventStore, ref: AccountRef, read: AccountRead, wallet_id: str) -> None:
        self.store, self.ref, self.read, self.wallet_id = store, ref, read, wallet_id
        self.wallet = find_wallet(read.account, wallet_id)
        self.known = {w.entry.seq: w.entry for w in read.ledger if w.wallet_id == wallet_id}
        self.known.update((e.seq, e) for e in self.wallet.pending_entries)
        self.folded: list[LedgerEntry] | None = None

    async def at(self, seqs: list[int]) -> list[LedgerEntry]:
        """The entries of `seqs`, in the order asked."""
        missing = [seq for seq in seqs if seq not in self.known]
        stored = await stored_entries(self.store.redis, self.store.keys, self.ref, self.wallet_id, missing)
        if any(entry is None for entry in stored):
            if self.folded is None:
                self.folded = await from_log(self.store, self.ref, self.read, self.wallet_id)
            folded = self.folded
            stored = [folded[seq] if seq < len(folded) else None for seq in missing]
        for seq, entry in zip(missing, stored, strict=True):
            if entry is None:
                raise LookupError(f"ledger entry {seq} of wallet {self.wallet_id} is missing from the store and "
                                  "the log")
            self.known[seq] = entry
        return [self.known[seq] for seq in seqs]


class LedgerPage(msgspec.Struct, frozen=True):
    """Entries of one wallet, in the order asked, as of one read; `next_seq` is where the next page starts (None:
    the last entry in that order was examined). `total`: how many entries matched in the whole ledger, when the
    request examined all of it (None otherwise); `left`: how many matches the next page must still skip (a scan
    whose budget ran out while skipping)."""

    read: AccountRead
    wallet: Wallet
    entries: list[LedgerEntry]
    next_seq: int | None
    total: int | None = None
    left: int = 0


async def read_page(store: EventStore, ref: AccountRef, wallet_id: str, start: int | None, skip: int,
                    limit: int) -> LedgerPage:
    """Up to `limit` entries, newest first, from seq `start` (None: the newest) after skipping `skip`: the stored
    entries up to the snapshot, plus those folding the unfolded tail wrote (read-your-writes). A pending entry is
    shown as the account has it now. Inside the window Redis keeps, costs one read and one HMGET of at most
    `limit` fields; a page reaching past it folds the log (`from_log`)."""
    source = LedgerSource(store, ref, await store.read_account(ref), wallet_id)
    wallet = source.wallet
    top = min(wallet.entries - 1 if start is None else start, wallet.entries - 1) - skip
    seqs = list(range(top, max(top - limit, -1), -1))
    entries = await source.at(seqs)
    next_seq = seqs[-1] - 1 if seqs and seqs[-1] > 0 else None
    return LedgerPage(source.read, wallet, entries, next_seq, wallet.entries)


Accept = Callable[[Wallet, LedgerEntry], bool]


class Scan(msgspec.Struct, frozen=True):
    """A filtered page: from seq `start` (None: the first in `ascending` order), the entries `accept` takes, after
    skipping `skip` of them, at most `limit`, examining at most `budget` entries."""

    start: int | None
    ascending: bool
    skip: int
    limit: int
    budget: int


async def scan_page(store: EventStore, ref: AccountRef, wallet_id: str, scan: Scan, accept: Accept) -> LedgerPage:
    """The page `scan` asks for. Once the page is full the scan goes on counting matches (within the budget) so
    that a request that examines the whole ledger knows the total exactly. `skipped` on the page says how many of
    `scan.skip` are still to skip when the budget ran out first (the next request continues with them)."""
    source = LedgerSource(store, ref, await store.read_account(ref), wallet_id)
    wallet, count = source.wallet, source.wallet.entries
    if scan.ascending:
        order = range(0 if scan.start is None else scan.start, count)
    else:
        order = range(count - 1 if scan.start is None else min(scan.start, count - 1), -1, -1)
    page: list[LedgerEntry] = []
    matched = examined = 0
    last: int | None = None
    for offset in range(0, min(len(order), scan.budget), CHUNK):
        seqs = list(order[offset:min(offset + CHUNK, scan.budget)])
        for seq, entry in zip(seqs, await source.at(seqs), strict=True):
            examined += 1
            if accept(wallet, entry):
                matched += 1
                if scan.skip < matched <= scan.skip + scan.limit:
                    page.append(entry)
                    last = seq
    done = examined == len(order)
    full = len(page) == scan.limit
    if full and (matched > scan.skip + scan.limit or not done):
        assert last is not None
        next_seq: int | None = last + (1 if scan.ascending else -1)
    else:
        next_seq = None if done or full else order[examined]
    left = max(0, scan.skip - matched) if next_seq is not None and not full else 0
    total = matched if scan.start is None and done else None
    return LedgerPage(source.read, wallet, page, next_seq, total, left)
