"""The one place that opens Redis clients: a single server or a Redis Cluster, decided by asking the server.

`connect(url)` answers a client for TALLY_REDIS_URL, whichever kind of Redis it names. A cluster (any node of one)
gets `redis.asyncio.cluster.RedisCluster`, which serves every command the store uses under the same names, so the
rest of the code holds it as a `Redis` and never asks which kind it has. The few things that do differ (which node
holds a key, sending a command to that node, WAIT after a write) are answered here.
"""

from functools import cache
from typing import Any, cast

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster


@cache
def is_cluster(url: str) -> bool:
    """Whether the server at `url` runs in cluster mode (INFO cluster: `cluster_enabled:1`); asked once per URL
    (a process's start-up: one round trip, blocking, before any client is used)."""
    with SyncRedis.from_url(url, socket_connect_timeout=10) as probe:
        info: Any = probe.info("cluster")
    return int(info.get("cluster_enabled", 0)) == 1


def connect(url: str) -> Redis:
    """A new asyncio client for `url`: a RedisCluster when the server is a cluster node, else a Redis."""
    if is_cluster(url):
        return cast(Redis, RedisCluster.from_url(url))
    return Redis.from_url(url)


def clustered(redis: Redis) -> bool:
    return isinstance(redis, RedisCluster)


def node_of(redis: Redis, key: str) -> str | None:
    """`host:port` of the primary that holds `key` on a cluster; None on a single server."""
    if not isinstance(redis, RedisCluster):
        return None
    node = redis.get_node_from_key(key)
    return f"{node.host}:{node.port}" if node is not None else None


def on_node_of(redis: Redis, key: str) -> dict[str, Any]:
    """Options for `execute_command` that send a keyless command (WAIT) to the node that holds `key`: on a cluster
    the primary that took the write, on the same pipelined connection; nothing on a single server."""
    if not isinstance(redis, RedisCluster) and not _cluster_pipeline(redis):
        return {}
    cluster = cast(Any, redis)
    client: RedisCluster = getattr(cluster, "cluster_client", cluster)
    return {"target_nodes": client.get_node_from_key(key)}


def _cluster_pipeline(redis: Any) -> bool:
    from redis.asyncio.cluster import ClusterPipeline

    return isinstance(redis, ClusterPipeline)
