"""Every test under tests/contract runs once per backend (tests/support/backends.py): the stores' contract."""

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.support.backends import BACKENDS, Backend, fake_redis, real_redis, redis_cluster


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """An empty store of each kind in turn."""
    if request.param == "redis":
        chosen = real_redis(request.getfixturevalue("redis_url"))
    elif request.param == "cluster":
        chosen = redis_cluster(request.getfixturevalue("redis_cluster"))
    else:
        chosen = fake_redis()
    chosen.flush()
    return chosen


@pytest.fixture
async def store_client(backend: Backend) -> AsyncIterator[Redis]:
    client = backend.connect()
    try:
        yield client
    finally:
        await client.aclose()
