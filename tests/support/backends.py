"""The stores tally runs on, as interchangeable test backends: a real redis-server, a real Redis Cluster (3 local
primaries) and fakeredis (what `tally dev` falls back to without one). The contract suite runs the same tests
against each."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fakeredis
from redis.asyncio import Redis

from store.connect import connect
from tests.support.redis_cluster import RedisCluster, flush_store


@dataclass(frozen=True)
class Backend:
    """One kind of store: `connect` opens a new asyncio client to it, `flush` empties it."""

    name: str
    connect: Callable[[], Redis]
    flush: Callable[[], None]


def real_redis(url: str) -> Backend:
    return Backend("redis", lambda: connect(url), lambda: flush_store(url))


def redis_cluster(cluster: RedisCluster) -> Backend:
    """Clients open through the same factory every process uses (store/connect.py), given one node's URL."""
    return Backend("cluster", lambda: connect(cluster.url), cluster.flush)


def fake_redis() -> Backend:
    """An in-process fakeredis server shared by every client this backend opens, as under `tally dev`."""
    server: Any = fakeredis.FakeServer()
    return Backend("fakeredis", lambda: fakeredis.FakeAsyncRedis(server=server),
                   lambda: fakeredis.FakeRedis(server=server).flushall())


BACKENDS = ("redis", "cluster", "fakeredis")
