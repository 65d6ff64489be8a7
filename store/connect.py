"""The one place that opens Redis clients: a single server or a Redis Cluster, decided by asking the server.

`connect(url)` answers a client for TALLY_REDIS_URL, whichever kind of Redis it names. A cluster (any node of one)
gets `redis.asyncio.cluster.RedisCluster`, which serves every command the store uses under the same names, so the
rest of the code holds it as a `Redis` and never asks which kind it has. The few things that do differ (which node
holds a key, sending a command to that node, WAIT after a write) are answered here.
"""

from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis import Redis as SyncRedis
from redis import RedisCluster as SyncRedisCluster
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.connection import HiredisRespSerializer
from redis.exceptions import AskError, MovedError

NODE_CONNECTIONS = 2**31
"""Connections a client may open to each node (or to the one server): unbounded. redis-py's default (100, for a single
server's pool too) refuses a command outright once that many are busy, and a projector holding many partitions (a new
store has 256) keeps one blocking XREAD open per partition."""


def is_cluster(url: str) -> bool:
    """Whether the server at `url` runs in cluster mode (INFO cluster: `cluster_enabled:1`); asked each time a client
    is built (at a process's start-up: one round trip, blocking, before it is used). Not remembered per URL: the
    server at an address can change (a test suite reuses a stopped cluster node's port for a plain server, and got
    a cluster client for it while the answer was cached)."""
    with SyncRedis.from_url(url, socket_connect_timeout=10) as probe:
        info: Any = probe.info("cluster")
    return int(info.get("cluster_enabled", 0)) == 1


class PackedInC(Connection):
    """redis-py's asyncio connection packs each command in Python, argument by argument (its blocking client packs
    with hiredis): the ingest routes' script calls spent a third of their time there (bench/PROFILE.md). This one
    packs with hiredis as the blocking client does (same bytes; the same DataError for an argument it cannot send),
    and hands hiredis the memoryviews the store passes (snapshot bytes in the projector's commit) as they are, where
    redis-py's serializer first copies each into new bytes."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str):
            if not name.isalpha():  # a command named in several words ("SCRIPT LOAD") is sent as several arguments
                args = (*name.encode().split(), *args[1:])
        elif b" " in name:
            args = (*name.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # e.g. a bytearray, which hiredis refuses: redis-py's way converts it (or says why not)
            packed: list[bytes] = self._packer.pack(*args)
            return packed


def connect(url: str) -> Redis:
    """A new asyncio client for `url`: a RedisCluster when the server is a cluster node, else a Redis (packing in C
    over TCP; a TLS or unix-socket URL names its own connection class)."""
    if is_cluster(url):
        return cast(Redis, RedisCluster.from_url(url, max_connections=NODE_CONNECTIONS))
    return Redis.from_url(url, max_connections=NODE_CONNECTIONS, connection_class=PackedInC)


def connect_sync(url: str, **options: Any) -> SyncRedis:
    """A blocking client for `url`, of the right kind (start-up reads before any event loop runs)."""
    if is_cluster(url):
        return cast(SyncRedis, SyncRedisCluster.from_url(url, **options))
    return SyncRedis.from_url(url, **options)


def node_of(redis: Redis, key: str) -> str | None:
    """`host:port` of the primary that holds `key` on a cluster; None on a single server."""
    if not isinstance(redis, RedisCluster):
        return None
    node = redis.get_node_from_key(key)
    return f"{node.host}:{node.port}" if node is not None else None


def each_node(redis: Any, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Options for `execute_command` that send a keyless command (WAIT) once to each primary holding one of `keys`,
    in a pipeline of `redis` (its commands to one node share one connection); one empty set on a single server."""
    if not isinstance(redis, RedisCluster):
        return [{}]
    nodes = {node.name: node for node in (redis.get_node_from_key(key) for key in keys) if node is not None}
    return [{"target_nodes": node} for node in nodes.values()]


async def on_node_of(redis: Redis, key: str, *command: Any) -> Any:
    """Run a command whose keys all share `key`'s slot. On a cluster it goes straight to the primary holding that
    slot: XREAD names its keys at movable places, and redis-py would otherwise ask a node which keys it names (two
    more round trips per read). When the slot has moved meanwhile, it is routed as usual, which follows it."""
    client: Any = redis  # redis-py leaves execute_command unannotated
    if isinstance(redis, RedisCluster):
        try:
            return await client.execute_command(*command, target_nodes=redis.get_node_from_key(key))
        except (MovedError, AskError):
            pass
    return await client.execute_command(*command)


async def unparsed_on_node_of(redis: Redis, key: str, name: str, *args: Any) -> Any:
    """`on_node_of`, with the reply as the server sent it where the client allows that (`unparsed_name`): the
    caller takes either form."""
    if isinstance(redis, RedisCluster):
        return await on_node_of(redis, key, name, *args)
    client: Any = redis  # redis-py leaves execute_command unannotated
    return await client.execute_command(unparsed_name(redis, name), *args)


def unparsed_name(redis: Redis, name: str) -> str | bytes:
    """The name to send command `name` under, through `redis` or a pipeline of it, for its reply as the server sent
    it where the client allows that: as bytes on a single server (redis-py runs its response callback, for XREAD or
    XRANGE a dict built per stream entry, only for a str name it knows), as it is on a cluster (which looks the str
    up to route the command; there the reply comes parsed)."""
    return name if isinstance(redis, RedisCluster) else name.encode()
