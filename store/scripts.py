"""The Lua scripts of the store, loaded from store/lua and run by SHA, on a single server or a Redis Cluster.

A script's cache is empty after a restart, a failover or `SCRIPT FLUSH` (it is not replicated): a call answered
NOSCRIPT did not run, so only those calls run again, with the script's source (EVAL, which caches it on that node):
never twice, and never refused again however often the cache is emptied meanwhile.
Pipelined calls (`run_each`) go as plain EVALSHA commands in a non-transactional pipeline, which both kinds of
client route by the call's first key (every script's keys share one slot and are all declared in KEYS); a script
given `links` (store/node_links.py) sends them over the store's own connections instead, one batch a node.
"""

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.errors import StoreUnavailable
from store.connect import each_node
from store.node_links import THROUGH_CLIENT, NodeLinks
from store.pipelined import PipelinedConnection

Args = Sequence[Any]


class Replicated(msgspec.Struct, frozen=True):
    """TALLY_WAIT_REPLICAS / TALLY_WAIT_TIMEOUT_MS: a write is answered only once WAIT says this many replicas of
    the primary that took it have it (Redis replication is asynchronous: without this, a primary lost right after
    answering may lose the write)."""

    replicas: int
    timeout_ms: int


def _source(name: str, *libs: str) -> str:
    """A script, after the shared functions it uses (store/lua/lib)."""
    lua = resources.files("store").joinpath("lua")
    parts = [lua.joinpath("lib", f"{lib}.lua").read_text() for lib in libs]
    return "".join([*parts, lua.joinpath(f"{name}.lua").read_text()])


class Script:
    """One Lua script bound to a client: `await script(keys=..., args=...)` runs it by SHA. With `connection`
    (store/pipelined.py), a single call goes over it; a call that fails there on the connection itself runs again
    through the client, which retries and reconnects as for every command. What the failed call did is unknown, so
    only scripts that may run twice get a connection: the balance read, and the single append (deduplicated by
    event id). Under the same rule, store/node_links.py's connections: `links` for `run_each` without `wait` (the
    append scripts of a bulk), one batch a node; `call_links` for a single call without a `connection` (on a
    cluster: the balance read and the single append; the projector's commit, fenced by its checkpoint: run again
    after it took effect, it finds the checkpoint moved and writes nothing). Batches and single calls get
    connections apart, so that no single call waits behind a bulk on its connection."""

    def __init__(self, redis: Redis, source: str) -> None:
        self.redis = redis
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.connection: PipelinedConnection | None = None
        self.links: NodeLinks | None = None
        self.call_links: NodeLinks | None = None

    async def __call__(self, keys: Args = (), args: Args = (), wait: Replicated | None = None) -> Any:
        if wait is not None:
            return (await self.run_each([(keys, args)], wait))[0]
        if self.connection is None and self.call_links is not None:
            return (await self._run([(keys, args)], None, self.call_links))[0]
        if self.connection is not None:
            try:
                return await self.connection.execute("EVALSHA", self.sha, len(keys), *keys, *args)
            except NoScriptError:
                return await self.redis.eval(self.source, len(keys), *keys, *args)
            except (RedisConnectionError, RedisTimeoutError):
                pass
        try:
            return await self.redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.redis.eval(self.source, len(keys), *keys, *args)

    async def run_each(self, calls: Sequence[tuple[Args, Args]], wait: Replicated | None = None) -> list[Any]:
        """Run every call (pipelined, one round trip per node), each atomic on its own; replies in call order.
        With `wait`, each node's calls are followed by a WAIT on the same connection, which must confirm them."""
        return await self._run(calls, wait, self.links if wait is None else None)

    async def _run(self, calls: Sequence[tuple[Args, Args]], wait: Replicated | None,
                   links: NodeLinks | None) -> list[Any]:
        if links is not None:
            replies = await self._over_links(links, calls)
        else:
            replies = await self._pipelined("EVALSHA", self.sha, calls, wait)
        again = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if again:
            retried = await self._pipelined("EVAL", self.source, [calls[index] for index in again], wait)
            for index, reply in zip(again, retried, strict=True):
                replies[index] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _over_links(self, links: NodeLinks, calls: Sequence[tuple[Args, Args]]) -> list[Any]:
        """The calls over `links`, errors left in place; those the links could not run (redirected, refused by the
        cluster for now, or on a failed connection), through the client's pipeline, which follows the cluster."""
        replies = await links.execute_all([(keys[0], ("EVALSHA", self.sha, len(keys), *keys, *args))
                                                for keys, args in calls])
        rerun = [index for index, reply in enumerate(replies) if isinstance(reply, THROUGH_CLIENT)]
        if rerun:
            again = await self._pipelined("EVALSHA", self.sha, [calls[index] for index in rerun], None)
            for index, reply in zip(rerun, again, strict=True):
                replies[index] = reply
        return replies

    async def _pipelined(self, command: str, script: str, calls: Sequence[tuple[Args, Args]],
                         wait: Replicated | None) -> list[Any]:
        """The calls as plain commands in a non-transactional pipeline; errors are left in place."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.execute_command(command, script, len(keys), *keys, *args)
            waits = each_node(self.redis, [keys[0] for keys, _ in calls]) if wait is not None else []
            for options in waits:
                pipe.execute_command("WAIT", wait.replicas if wait else 0, wait.timeout_ms if wait else 0, **options)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        if wait is not None:
            _confirmed(wait, replies[len(calls):])
        return replies[:len(calls)]


def _confirmed(wait: Replicated, acknowledged: Sequence[Any]) -> None:
    if any(isinstance(count, Exception) or int(count) < wait.replicas for count in acknowledged):
        raise StoreUnavailable(
            f"the write was not confirmed by {wait.replicas} replica(s) within {wait.timeout_ms} ms "
            "(TALLY_WAIT_REPLICAS): it may or may not survive a failover; retry it with the same event_id or "
            "idempotency_key")


def script(redis: Redis, name: str, *libs: str) -> Script:
    return Script(redis, _source(name, *libs))


class Scripts:
    def __init__(self, redis: Redis) -> None:
        self.append = script(redis, "append", "stream_end")
        self.append_batch = script(redis, "append_batch", "stream_end")
        self.append_usage = script(redis, "append_usage", "stream_end")
        self.read = script(redis, "read", "unfolded_tail")
        self.read_within = script(redis, "read_within", "unfolded_tail")
        self.commit = script(redis, "commit")
        self.lease = script(redis, "lease")
        self.release = script(redis, "release")
        self.webhook_enqueue = script(redis, "webhook_enqueue")
        self.webhook_record = script(redis, "webhook_record")
        self.webhook_claim = script(redis, "webhook_claim")
        self.unquarantine = script(redis, "unquarantine", "stream_end")
        self.trim_alerts = script(redis, "trim_alerts")
        self.customer_write = script(redis, "customer_write")
