"""Fault-injection bookkeeping: one row per scenario, and the audit that fills it from the store.

A row reads (scenario, events, faults injected, lost, duplicated, drift):
- events: entries in the customer streams at the end;
- lost: acknowledged appends missing from their customer stream, plus stream entries that the caught-up
  snapshot never applied (Account.applied short of the stream length);
- duplicated: event ids present more than once in a stream, snapshots that applied more entries than the
  stream holds, and ledger entries repeating a transaction id;
- drift: differences between each snapshot and a fold of its stream from zero (store.verify.verify_all).
"""

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from domain.codec import decode_ledger_entry
from domain.identity import AccountRef
from domain.state import LedgerEntry
from store.eventstore import EventStore
from store.generation import live_generation
from store.ledger import load_with_snapshot
from store.projection import Projection
from store.verify import verify_all
from tests.support.catchup import every_account, lag

HEADER = ("scenario", "events", "faults", "lost", "duplicated", "drift", "outcome", "note")


@dataclass
class Row:
    scenario: str
    events: int = 0
    faults: int = 0
    lost: int = 0
    duplicated: int = 0
    drift: int = 0
    note: str = ""
    problems: list[str] = field(default_factory=list)
    known_bugs: list[str] = field(default_factory=list)
    seen_bugs: list[str] = field(default_factory=list)  # a known bug that struck on this run, reproduced elsewhere
    bug_explains_columns: bool = False  # the known bug is what made lost/duplicated/drift non-zero
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return (self.lost, self.duplicated, self.drift) == (0, 0, 0) and not self.problems

    @property
    def outcome(self) -> str:
        if self.known_bugs:
            return "KNOWN BUG"
        if not self.clean:
            return "FAIL"
        return "ok (bug seen)" if self.seen_bugs else "ok"

    def cells(self) -> tuple[str, ...]:
        return (self.scenario, str(self.events), str(self.faults), str(self.lost), str(self.duplicated),
                str(self.drift), self.outcome,
                f"{self.note}{''.join(f'; PROBLEM: {p}' for p in self.problems)}"
                f"{''.join(f'; BUG: {b}' for b in self.known_bugs + self.seen_bugs)} [{self.seconds:.1f}s]")


class KnownBug(AssertionError):
    """A scenario met the signature of a bug already reported (its test is xfail(strict=True, raises=KnownBug))."""


@dataclass
class FaultTable:
    """Rows in the order the scenarios ran; printed as plain text."""

    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"\nFAULT ROW {' | '.join(row.cells())}", flush=True)

    def render(self) -> str:
        lines = [HEADER, *(row.cells() for row in self.rows)]
        widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER) - 1)]
        out = []
        for n, line in enumerate(lines):
            out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + line[-1])
            if n == 0:
                out.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
        return "\n".join(out)

    def write(self, path: Path) -> None:
        path.write_text(self.render() + "\n")


@dataclass
class Audit:
    events: int = 0
    lost: int = 0
    duplicated: int = 0
    drift: int = 0
    behind: int = 0
    missing: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def fill(self, row: Row) -> Row:
        row.events, row.lost, row.duplicated, row.drift = self.events, self.lost, self.duplicated, self.drift
        if self.details:
            row.note = f"{row.note}; {'; '.join(self.details[:3])}"
        return row


async def at_live_generation(store: EventStore, projection: Projection) -> int:
    """Point both at the generation reads use now (after `tally replay` it is not 1); returns it."""
    generation = await live_generation(store.redis, store.keys)
    store.use_generation(generation)
    projection.use_generation(generation)
    return generation


async def audit(store: EventStore, projection: Projection, acked: Mapping[str, AccountRef]) -> Audit:
    """Count what was lost, duplicated or drifted, reading every stream and snapshot of the live generation."""
    await at_live_generation(store, projection)
    result = Audit()
    logged: dict[AccountRef, set[str]] = {}
    for ref in await every_account(store):
        log = await store.read_log(ref)
        ids = [event.id for _, event in log]
        logged[ref] = set(ids)
        result.events += len(ids)
        twice = len(ids) - len(set(ids))
        snapshot = (await store.read_account(ref, cached=True)).account
        unapplied, overapplied = max(0, len(ids) - snapshot.applied), max(0, snapshot.applied - len(ids))
        ledger = sum(n - 1 for entries in (await stored_ledgers(store, ref)).values()
                     for n in Counter(entry.id for entry in entries).values())
        result.lost += unapplied
        result.duplicated += twice + overapplied + ledger
        if twice or overapplied or ledger or unapplied:
            head = log[-1][0] if log else "0-0"  # snapshot short of it: not folded yet; at it: skipped
            result.details.append(f"{ref.customer_id}: stream {len(ids)} ids ({twice} repeated) up to {head}, "
                                  f"applied {snapshot.applied} up to {snapshot.position}, repeated ledger ids {ledger}")
    missing = [event_id for event_id, ref in acked.items() if event_id not in logged.get(ref, ())]
    result.lost += len(missing)
    result.missing = missing
    if missing:
        result.details.append(f"{len(missing)} acknowledged appends missing, e.g. {sorted(missing)[:3]}")
    verified = await verify_all(store, projection)
    result.drift = len(verified.drifts)
    result.behind = len(verified.behind)
    if verified.behind:
        result.details.append(f"{result.behind} snapshots short of their stream head, e.g. {verified.behind[0]}")
    if verified.drifts:
        first = verified.drifts[0]
        result.details.append(f"{len(verified.drifts)} drifts, e.g. {first.ref.customer_id} {first.field}: "
                              f"snapshot={first.snapshot[:60]} log={first.log[:60]}")
    return result


async def stored_ledgers(store: EventStore, ref: AccountRef) -> dict[str, list[LedgerEntry]]:
    """The account's stored ledger entries per wallet id, in seq order."""
    _, stored = await load_with_snapshot(store.redis, store.keys, ref)
    by_wallet: dict[str, list[tuple[int, LedgerEntry]]] = {}
    for name, blob in stored.entries.items():
        wallet, _, seq = name.rpartition(":")
        by_wallet.setdefault(unquote(wallet), []).append((int(seq), decode_ledger_entry(blob)))
    return {wallet: [entry for _, entry in sorted(entries)] for wallet, entries in by_wallet.items()}


async def wait_until_caught_up(store: EventStore, projection: Projection, timeout: float) -> list[str]:
    """Poll (no fixed sleep) until every checkpoint and snapshot of the live generation reached its stream head;
    returns what is still behind when the deadline passes (empty when caught up)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await at_live_generation(store, projection)
        behind = await lag(store, projection)
        if not behind or loop.time() > deadline:
            return behind
        await asyncio.sleep(0.02)
