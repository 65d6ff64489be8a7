"""The snapshots a partition's worker wrote, kept decoded while it holds the partition's lease.

At a few thousand events a second a batch holds about one event per account it touches, so reading each touched
snapshot back (an HMGET) and decoding it cost more than folding its event. The worker keeps what it committed
instead, and reads from Redis only the accounts it does not hold.

Correctness never depends on it: every write names the snapshot its fold started from, and the commit
(store/lua/commit.lua) refuses the whole batch when a stored snapshot is another one (an operator's rebuild or
release, another holder after a takeover, a new generation). The worker then forgets everything it kept and reads
the batch again from its checkpoint. It also forgets on every change that could have moved a snapshot under it
(the lease taken or lost, a generation switch, a failed turn), so a refused commit is rare.

The base check compares the snapshot's state only, not its quarantine mark: it relies on a commit being the only
writer that quarantines an account (the commit that does so also drops it here). A writer that ever set the mark
on its own would have to change the snapshot too, or commit.lua would have to refuse a quarantined base.
"""

from collections.abc import Sequence

from domain.identity import AccountRef
from store.projection import Projection, Snapshot, SnapshotWrite

CACHED_ACCOUNTS = 8_192
"""Decoded snapshots a projector keeps across all the partitions it holds (a partition keeps its share of them, at
least MIN_PER_PARTITION); the least recently written go first."""
MIN_PER_PARTITION = 16


class SnapshotCache:
    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.kept: dict[AccountRef, Snapshot] = {}

    def forget(self) -> None:
        self.kept.clear()

    async def load(self, projection: Projection, refs: Sequence[AccountRef]) -> list[Snapshot]:
        """The snapshots of `refs`, in order: kept ones as they were written, the rest read from Redis."""
        kept = self.kept
        missing = [ref for ref in refs if ref not in kept]
        if not missing:
            return [kept[ref] for ref in refs]
        read = dict(zip(missing, await projection.load_snapshots(missing), strict=True))
        return [kept[ref] if ref in kept else read[ref] for ref in refs]

    def wrote(self, writes: Sequence[SnapshotWrite], dropped: Sequence[AccountRef] = ()) -> None:
        """After a commit: keep the accounts it wrote (decoded), forget the ones it quarantined (`dropped`)."""
        kept = self.kept
        for ref in dropped:
            kept.pop(ref, None)
        for write in writes:
            if write.account is None:
                continue
            kept.pop(write.ref, None)  # re-inserted last: the dict's order is the order of writes
            kept[write.ref] = Snapshot(write.position, write.state, None, write.account)
        while len(kept) > self.limit:
            del kept[next(iter(kept))]


def per_partition(partitions: int) -> int:
    return max(MIN_PER_PARTITION, CACHED_ACCOUNTS // max(1, partitions))
