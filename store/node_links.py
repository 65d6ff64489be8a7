"""Batches of script calls over the store's own connections (store/pipelined.py): the one server's, or on a Redis
Cluster one per primary, each call sent to the primary that the client's slot map names for its first key (all of
a script's keys share that slot).

Through redis-py's cluster pipeline, a bulk ingest's API process spent half its time working out each call's slot
from every key it names and packing the arguments in Python (bench/PROFILE.md, "Bulk ingest on a cluster"). Here a
call costs one slot lookup and is packed by hiredis, and a node's calls share one waiter.

What these connections cannot do is left to the client, which does it for every other command: a call the cluster
redirects (MOVED, ASK) or turns away (TRYAGAIN, CLUSTERDOWN) did not run, and one whose connection failed may or
may not have run; both come back as `THROUGH_CLIENT` errors for the caller to run again through the client. Only
calls that may run twice belong here (the append scripts, which deduplicate by event id and idempotency key).
"""

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import AskError, ClusterDownError, RedisClusterException, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from store.pipelined import PipelinedConnection

THROUGH_CLIENT = (AskError, TryAgainError, ClusterDownError, RedisConnectionError, RedisTimeoutError)
"""Replies that say a call must run again through the client (MovedError is an AskError)."""

Call = tuple[str, Sequence[Any]]
"""A command and the first key it names (which decides its node on a cluster)."""


class NodeLinks:
    """The connections of one client: `execute_all` sends each call to its node, one batch a node."""

    def __init__(self, redis: Redis, single: PipelinedConnection | None) -> None:
        self.redis, self.single = redis, single
        self.links: dict[str, PipelinedConnection | None] = {}  # a cluster's, by node name (None: not possible)

    @classmethod
    def of(cls, redis: Redis) -> "NodeLinks | None":
        """Links for `redis`: a cluster client, or a single-server one that PipelinedConnection.of accepts."""
        if isinstance(redis, RedisCluster):
            return cls(redis, None)
        single = PipelinedConnection.of(redis)
        return None if single is None else cls(redis, single)

    async def execute_all(self, calls: Sequence[Call]) -> list[Any]:
        """Each call's reply, in call order, an error reply in place; a call that could not go over these
        connections (its node is unknown, or its options ask for more than they do) answers a ConnectionError."""
        if self.single is not None:
            return await _batch(self.single, [command for _, command in calls])
        groups: dict[PipelinedConnection | None, list[int]] = {}
        for index, (key, _) in enumerate(calls):
            groups.setdefault(self._link(key), []).append(index)
        if len(groups) == 1:  # one node (a single call): no task to gather
            return await _batch(next(iter(groups)), [command for _, command in calls])
        replies: list[Any] = [None] * len(calls)
        answered = await asyncio.gather(*(_batch(link, [calls[i][1] for i in indices])
                                          for link, indices in groups.items()))
        for indices, group in zip(groups.values(), answered, strict=True):
            for index, reply in zip(indices, group, strict=True):
                replies[index] = reply
        return replies

    def _link(self, key: str) -> PipelinedConnection | None:
        cluster: Any = self.redis
        try:
            node = cluster.get_node_from_key(key)
        except RedisClusterException:  # the slot map does not cover it (yet): the client finds the node
            return None
        if node is None:
            return None
        if node.name not in self.links:
            self.links[node.name] = PipelinedConnection.like(node.connection_class, node.connection_kwargs,
                                                             node.host, node.port)
        return self.links[node.name]

    async def aclose(self) -> None:
        for link in [self.single, *self.links.values()]:
            if link is not None:
                await link.aclose()


async def _batch(link: PipelinedConnection | None, commands: list[Sequence[Any]]) -> list[Any]:
    """The commands' replies over `link`, or a connection error for each when it is None or fails."""
    if link is None:
        return [RedisConnectionError("no connection of the store's own to this node")] * len(commands)
    try:
        return await link.execute_all(commands)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        return [exc] * len(commands)
