"""Encoded balance responses remembered in the API process, each answered again only while it is still exact.

A response is a pure function of the account read, the wallet, the expansion and the mode it was answered in, and
of the instant only through which lots count (domain.balance.view_span). So one is kept with the read it came from
(the very object the store's read memo returns while the stored account is unchanged; held weakly, so a read the
store's memo let go is not kept alive here) and the span of instants it holds for; a request whose read is that
object and whose instant lies in that span gets the same bytes.
"""

import weakref
from collections.abc import Callable
from datetime import datetime

from domain.identity import AccountRef
from store.eventstore import AccountRead

MEMO_LIMIT = 4096
Key = tuple[AccountRef, str, bool, bool]  # account, wallet id, breakdown, answered from the snapshot alone


class Held:
    __slots__ = ("body", "read", "since", "until")

    def __init__(self, read: AccountRead, since: datetime | None, until: datetime | None, body: bytes) -> None:
        self.read, self.since, self.until, self.body = weakref.ref(read), since, until, body

    def holds(self, read: AccountRead, now: datetime) -> bool:
        return (read is self.read() and (self.since is None or self.since <= now)
                and (self.until is None or now < self.until))


class BalanceMemo:
    def __init__(self, limit: int = MEMO_LIMIT) -> None:
        self.limit = limit
        self._held: dict[Key, Held] = {}

    def body(self, key: Key, read: AccountRead, now: datetime,
             encode: Callable[[], tuple[bytes, datetime | None, datetime | None]]) -> bytes:
        """The response body for `key` at `now`: remembered, or `encode()`d (body, since, until) and remembered."""
        held = self._held.get(key)
        if held is not None and held.holds(read, now):
            return held.body
        body, since, until = encode()
        if held is None and len(self._held) >= self.limit:
            del self._held[next(iter(self._held))]
        if self.limit > 0:
            self._held[key] = Held(read, since, until, body)
        return body

    def __len__(self) -> int:
        return len(self._held)
