"""Store-wide settings checked at start-up: every process must agree on the partition count."""


from redis.asyncio import Redis

from domain.errors import ValidationFailed
from store.keys import Keys


async def ensure_partitions(redis: Redis, keys: Keys) -> None:
    """Record the partition count on first use; refuse to run with a different one later."""
    await redis.hsetnx(keys.meta(), "partitions", keys.partitions)
    stored = int(await redis.hget(keys.meta(), "partitions") or 0)
    if stored != keys.partitions:
        raise ValidationFailed(
            f"this store was created with {stored} partitions, not {keys.partitions}; set TALLY_PARTITIONS={stored}"
        )
