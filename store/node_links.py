"""Batches of commands over the store's own connections (store/pipelined.py): the one server's, or on a Redis
Cluster one per primary, each call sent to the primary that the client's slot map names for its first key (all of
a script's keys share that slot). `NodeLinks` sends script calls, each to its node; `run_together` a batch of
commands of one slot (a rebuild's reads and writes of one partition) over one given connection.

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
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

from store.connect import PackedInC
from store.pipelined import REDIRECTED, PipelinedConnection

THROUGH_CLIENT = (*REDIRECTED, RedisConnectionError, RedisTimeoutError)
"""Replies that say a call must run again through the client."""

Call = tuple[str, Sequence[Any]]
"""A command and the first key it names (which decides its node on a cluster)."""


class NodeLinks:
    """The connections of one client: `execute_all` sends each call to its node, one batch a node."""

    def __init__(self, redis: Redis, single: PipelinedConnection | None) -> None:
        self.redis, self.single = redis, single
        self.links: dict[str, PipelinedConnection | None] = {}  # a cluster's, by node name (None: not possible)

    @classmethod
    def of(cls, redis: Redis) -> "NodeLinks | None":
        """Links for `redis`: a cluster client over plain TCP, or a single-server one that PipelinedConnection.of
        accepts; None for anything else (TLS, …), which keeps the client's path."""
        if isinstance(redis, RedisCluster):
            kind = redis.connection_kwargs.get("connection_class", Connection)
            return cls(redis, None) if kind in (Connection, PackedInC) else None
        single = PipelinedConnection.of(redis)
        return None if single is None else cls(redis, single)

    async def execute_all(self, calls: Sequence[Call]) -> list[Any]:
        """Each call's reply, in call order, an error reply in place; a call that could not go over these
        connections (its node is unknown, or its options ask for more than they do) answers a ConnectionError."""
        if self.single is not None:
            return await _batch(self.single, [command for _, command in calls])
        groups: dict[PipelinedConnection | None, list[int]] = {}
        for index, (key, _) in enumerate(calls):
            groups.setdefault(self.link(key), []).append(index)
        if len(groups) == 1:  # one node (a single call): no task to gather
            return await _batch(next(iter(groups)), [command for _, command in calls])
        replies: list[Any] = [None] * len(calls)
        answered = await asyncio.gather(*(_batch(link, [calls[i][1] for i in indices])
                                          for link, indices in groups.items()))
        for indices, group in zip(groups.values(), answered, strict=True):
            for index, reply in zip(indices, group, strict=True):
                replies[index] = reply
        return replies

    def link(self, key: str) -> PipelinedConnection | None:
        """The connection to the primary holding `key` (the one server's on a single server)."""
        if self.single is not None:
            return self.single
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


async def run_together(redis: Redis, direct: PipelinedConnection | None, commands: Sequence[Sequence[Any]],
                       transaction: bool = False) -> list[Any]:
    """`commands` in one round trip, their replies in order (the first error reply raised), in MULTI/EXEC when
    `transaction`. Over `direct` when given (no per-command path of redis-py; on a cluster, the connection to the
    primary of the commands' one slot); through a redis-py pipeline without it, or when it failed on the connection
    itself, or a cluster node did not run a command there (redirected): only for commands that may run twice (what
    a call that failed there did is unknown)."""
    if direct is not None:
        replies = await _over(direct, [("MULTI",), *commands, ("EXEC",)] if transaction else commands)
        if replies is not None:
            if transaction:
                _raise_first(replies)  # a command refused when queued (EXEC then aborts)
                replies = replies[-1]
            _raise_first(replies)
            return replies
    async with redis.pipeline(transaction=transaction) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute())


async def _over(direct: PipelinedConnection, commands: Sequence[Sequence[Any]]) -> list[Any] | None:
    """The replies over `direct`; None when the connection failed or a cluster node did not run a command there."""
    try:
        replies = await direct.execute_all(commands)
    except (RedisConnectionError, RedisTimeoutError):
        return None
    return None if any(isinstance(reply, REDIRECTED) for reply in replies) else replies


def _raise_first(replies: Sequence[Any]) -> None:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
