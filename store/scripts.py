"""The Lua scripts of the store, loaded from store/lua and run by SHA, on a single server or a Redis Cluster.

A script's cache is empty after a restart, a failover or `SCRIPT FLUSH` (it is not replicated): a call answered
NOSCRIPT did not run, so the script is loaded (on every primary) and only those calls run again — never twice.
Pipelined calls (`run_each`) go as plain EVALSHA commands in a non-transactional pipeline, which both kinds of
client route by the call's first key (every script's keys share one slot and are all declared in KEYS).
"""

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

Args = Sequence[Any]
LOAD_ATTEMPTS = 3
"""How many times a call answered NOSCRIPT is loaded and run again (a cache flushed again meanwhile)."""


def _source(name: str, *libs: str) -> str:
    """A script, after the shared functions it uses (store/lua/lib)."""
    lua = resources.files("store").joinpath("lua")
    parts = [lua.joinpath("lib", f"{lib}.lua").read_text() for lib in libs]
    return "".join([*parts, lua.joinpath(f"{name}.lua").read_text()])


class Script:
    """One Lua script bound to a client: `await script(keys=..., args=...)` runs it by SHA."""

    def __init__(self, redis: Redis, source: str) -> None:
        self.redis = redis
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Args = (), args: Args = ()) -> Any:
        for _ in range(LOAD_ATTEMPTS):
            try:
                return await self.redis.evalsha(self.sha, len(keys), *keys, *args)
            except NoScriptError:
                await self.redis.script_load(self.source)  # on a cluster: every primary
        raise NoScriptError(f"script {self.sha} was not in the cache after {LOAD_ATTEMPTS} loads")

    async def run_each(self, calls: Sequence[tuple[Args, Args]]) -> list[Any]:
        """Run every call (pipelined, one round trip per node), each atomic on its own; replies in call order."""
        replies: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for _ in range(LOAD_ATTEMPTS):
            async with self.redis.pipeline(transaction=False) as pipe:
                for index in pending:
                    keys, args = calls[index]
                    pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
                answers: list[Any] = await pipe.execute(raise_on_error=False)
            again = []
            for index, answer in zip(pending, answers, strict=True):
                if isinstance(answer, NoScriptError):
                    again.append(index)
                elif isinstance(answer, Exception):
                    raise answer
                else:
                    replies[index] = answer
            if not again:
                return replies
            await self.redis.script_load(self.source)  # on a cluster: every primary
            pending = again
        raise NoScriptError(f"script {self.sha} was not in the cache after {LOAD_ATTEMPTS} loads")


def script(redis: Redis, name: str, *libs: str) -> Script:
    return Script(redis, _source(name, *libs))


class Scripts:
    def __init__(self, redis: Redis) -> None:
        self.append = script(redis, "append", "stream_end")
        self.append_batch = script(redis, "append_batch", "stream_end")
        self.read = script(redis, "read")
        self.commit = script(redis, "commit")
        self.lease = script(redis, "lease")
        self.release = script(redis, "release")
        self.webhook_enqueue = script(redis, "webhook_enqueue")
        self.webhook_record = script(redis, "webhook_record")
        self.webhook_claim = script(redis, "webhook_claim")
        self.unquarantine = script(redis, "unquarantine", "stream_end")
        self.trim_alerts = script(redis, "trim_alerts")
        self.customer_write = script(redis, "customer_write")
