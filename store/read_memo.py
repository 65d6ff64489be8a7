"""Account reads remembered in the process: the last read script reply per (account, mode) and what it folded to.

A read's result (eventstore.account_read) is a pure function of the script's reply: the snapshot's position, bytes,
folded-at and quarantine mark, the unfolded tail's entries and the rate card blobs they name (immutable by their
digest). So when a new reply equals the remembered one in full (compared as values, not by any version number),
the remembered result is the exact answer and the decode and the fold are skipped; any difference, however made
(a commit, a rebuild, a new tail entry, a quarantine), folds again. The memo holds at most `limit` replies and
`budget` bytes of encoded snapshots (held with its decoded account and tail, a reply takes about six times its
snapshot's bytes); past either, the longest held goes first. Results are frozen structs, shared read-only.
"""

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from domain.identity import AccountRef

READ_MEMO_LIMIT = 4096  # replies held (each a snapshot's bytes, its tail and their decoded account)
READ_MEMO_BUDGET = 16 * 1024 * 1024  # bytes of encoded snapshots held
LARGEST = 256 * 1024  # a snapshot larger than this is not held (rare; it would crowd out many small ones)
T = TypeVar("T")
Key = tuple[AccountRef, bool]


class ReadMemo(Generic[T]):
    def __init__(self, limit: int = READ_MEMO_LIMIT, budget: int = READ_MEMO_BUDGET) -> None:
        self.limit, self.budget = limit, budget
        self.held_bytes = 0
        self._held: dict[Key, tuple[Sequence[Any], T]] = {}

    def read(self, ref: AccountRef, cached: bool, reply: Sequence[Any], fold: Callable[[Sequence[Any]], T]) -> T:
        """`fold(reply)`, or what it gave for an equal reply of the same account and mode."""
        key = (ref, cached)
        held = self._held.get(key)
        if held is not None and held[0] == reply:
            return held[1]
        result = fold(reply)
        if held is not None:
            self._drop(key)
        size = _size(reply)
        if self.limit > 0 and size <= LARGEST:
            while self._held and (len(self._held) >= self.limit or self.held_bytes + size > self.budget):
                self._drop(next(iter(self._held)))
            self._held[key] = (reply, result)
            self.held_bytes += size
        return result

    def _drop(self, key: Key) -> None:
        self.held_bytes -= _size(self._held.pop(key)[0])

    def __len__(self) -> int:
        return len(self._held)


def _size(reply: Sequence[Any]) -> int:
    return len(reply[1] or b"")
