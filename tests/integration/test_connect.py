"""store/connect.py: a client for a single server holds as many commands at once as a projector needs (one blocking
XREAD per partition it holds, 256 partitions in a new store), where redis-py's default pool stops at 100."""

import asyncio
import os

import pytest

from store.connect import connect

CONCURRENT = 300


ON_CLUSTER = bool(os.environ.get("TALLY_TEST_CLUSTER"))  # `make cluster`: every redis_url names a cluster


@pytest.mark.skipif(ON_CLUSTER, reason="a single server's pool is the subject (a cluster's projectors run in "
                                       "tests/e2e/test_sdk_cluster.py)")
async def test_a_single_server_client_holds_more_blocking_commands_than_redis_pys_default_pool(
    clean_redis: str,
) -> None:
    redis = connect(clean_redis)
    try:
        replies = await asyncio.gather(*(redis.blpop([f"nothing-{n}"], timeout=0.3) for n in range(CONCURRENT)))
    finally:
        await redis.aclose()
    assert replies == [None] * CONCURRENT
