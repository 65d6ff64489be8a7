"""The alert log: the balance alerts of the notices streams, read newest first within a bound. The streams keep
notices for TALLY_ALERTS_RETENTION_SECONDS (README: Retention), so that is how far back the log reaches."""

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from domain.codec import decode_notice
from domain.notices import BalanceAlert
from store.keys import Keys
from store.positions import text

LOG_BUDGET = 10_000  # notices one search may examine; more in scope is a 400 asking to narrow it


class TooMany(Exception):
    """The streams in scope hold more notices than one search may examine."""

    def __init__(self, held: int) -> None:
        super().__init__(f"{held} notices in scope")
        self.held = held


async def alerts_in(redis: Redis, keys: Keys, partitions: Sequence[int]) -> list[tuple[str, BalanceAlert]]:
    """Every balance alert of the partitions' notices streams (keyed by the notice's key), or TooMany."""
    async with redis.pipeline(transaction=False) as pipe:
        for partition in partitions:
            pipe.xlen(keys.notices(partition))
        lengths: list[int] = await pipe.execute()
    if sum(lengths) > LOG_BUDGET:
        raise TooMany(sum(lengths))
    async with redis.pipeline(transaction=False) as pipe:
        for partition in partitions:
            pipe.xrevrange(keys.notices(partition), count=LOG_BUDGET)
        pages: list[Any] = await pipe.execute()
    found: list[tuple[str, BalanceAlert]] = []
    for page in pages:
        for _, fields in page:
            notice = decode_notice(fields[b"a"])
            if isinstance(notice, BalanceAlert):
                found.append((text(fields[b"k"]), notice))
    return found
