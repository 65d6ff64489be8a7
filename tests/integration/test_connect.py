"""store/connect.py: a client for a single server holds as many commands at once as a projector needs (one blocking
XREAD per partition it holds, 256 partitions in a new store), where redis-py's default pool stops at 100; and it
packs commands in C into the bytes redis-py packs in Python."""

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from cli.stores import REDIS_SETTINGS, start_redis_server
from store.connect import PackedInC, connect, is_cluster
from tests.support.redis_cluster import cluster_ports

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


ARGUMENTS = [("EVALSHA", "ab", 2, b"k", 1.5, 10**20, -3, 0.1, 1e-7, "é", b"\x00\xff\r\n", ""),
             ("CONFIG GET", "maxmemory"), (b"CLIENT LIST",), ("SET", "k", b"v" * 100_000),
             ("SET", "k", memoryview(b"view")), ("SET", "k", bytearray(b"array")), ("SET", "k", "v", "EX", 1),
             ("EVALSHA", "ab", 1, "k", memoryview(b"snapshot \x00\xff" * 300), memoryview(b""), bytearray(b"\x01\x02"))]


@pytest.mark.parametrize("args", ARGUMENTS)
def test_commands_are_packed_in_c_into_the_bytes_redis_py_packs_in_python(args: tuple[object, ...]) -> None:
    python, c = Connection(), PackedInC()
    assert b"".join(c.pack_command(*args)) == b"".join(python.pack_command(*args))
    for refused in (True, None, object()):
        with pytest.raises(DataError):
            python.pack_command("SET", "k", refused)
        with pytest.raises(DataError):
            c.pack_command("SET", "k", refused)


@pytest.mark.skipif(ON_CLUSTER, reason="a cluster client keeps redis-py's own connections")
async def test_a_single_server_client_packs_in_c_and_round_trips(clean_redis: str) -> None:
    redis = connect(clean_redis)
    try:
        await redis.set("k", "é\x00")
        assert await redis.get("k") == "é\x00".encode()
        assert redis.connection_pool.connection_class is PackedInC
    finally:
        await redis.aclose()


@pytest.mark.skipif(not shutil.which("redis-server"), reason="starts its own redis-servers")
def test_the_kind_of_server_is_asked_again_for_a_url_whose_server_changed(tmp_path: Path) -> None:
    """A cluster node stopped and a plain server started on its port (as a test suite reuses ports): the client
    built after it is a plain one, not the cluster client the first answer named. The port is one a cluster node
    can take (its bus port, 10,000 above, free and under 65,536)."""
    port = cluster_ports(1)[0]
    url = f"redis://127.0.0.1:{port}/0"
    for cluster in (True, False):
        server = start_redis_server(tmp_path / str(cluster), port, fsync="no",
                                    settings=(*REDIS_SETTINGS, "--cluster-enabled", "yes") if cluster else ())
        try:
            assert is_cluster(url) is cluster
            assert isinstance(connect(url), RedisCluster) is cluster
        finally:
            server.terminate()
            server.wait(timeout=10)
