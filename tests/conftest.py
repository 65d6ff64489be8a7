"""Shared fixtures: a real Redis for integration tests (its own redis-server, or TALLY_TEST_REDIS_URL)."""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from store.connect import connect
from tests.support.redis_cluster import RedisCluster, flush_store, have_cluster_tools
from tests.support.redis_server import RedisServer, external_url, have_redis_server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis: TALLY_TEST_REDIS_URL when set, else a redis-server started for this session."""
    url = external_url()
    if url:
        yield url
        return
    if os.environ.get("TALLY_TEST_CLUSTER"):  # `make cluster`: the same tests on a real 3-primary Redis Cluster
        yield from _cluster_url(tmp_path_factory)
        return
    if not have_redis_server():
        pytest.fail("redis-server is not installed (CI installs it in .ci/run); or set TALLY_TEST_REDIS_URL")
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = RedisCluster(Path(tmp_path_factory.mktemp("cluster")))
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real local Redis Cluster (3 primaries, no replicas) started once for the session."""
    if not have_cluster_tools():
        pytest.fail("redis-server and redis-cli are not installed (CI installs them in .ci/run)")
    cluster = RedisCluster(Path(tmp_path_factory.mktemp("cluster")))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """The real Redis, emptied before the test."""
    flush_store(redis_url)
    return redis_url


@pytest.fixture
async def aredis(clean_redis: str) -> AsyncIterator[Redis]:
    client = connect(clean_redis)
    try:
        yield client
    finally:
        await client.aclose()
