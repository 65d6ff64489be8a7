"""The Lua scripts of the store, loaded once from store/lua and run by SHA."""

from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def _source(name: str, *libs: str) -> str:
    """A script, after the shared functions it uses (store/lua/lib)."""
    lua = resources.files("store").joinpath("lua")
    parts = [lua.joinpath("lib", f"{lib}.lua").read_text() for lib in libs]
    return "".join([*parts, lua.joinpath(f"{name}.lua").read_text()])


class Scripts:
    def __init__(self, redis: Redis) -> None:
        self.append: AsyncScript = redis.register_script(_source("append", "stream_end"))
        self.append_batch: AsyncScript = redis.register_script(_source("append_batch", "stream_end"))
        self.read: AsyncScript = redis.register_script(_source("read"))
        self.read_within: AsyncScript = redis.register_script(_source("read_within"))
        self.commit: AsyncScript = redis.register_script(_source("commit"))
        self.lease: AsyncScript = redis.register_script(_source("lease"))
        self.release: AsyncScript = redis.register_script(_source("release"))
        self.webhook_enqueue: AsyncScript = redis.register_script(_source("webhook_enqueue"))
        self.webhook_record: AsyncScript = redis.register_script(_source("webhook_record"))
        self.webhook_claim: AsyncScript = redis.register_script(_source("webhook_claim"))
        self.unquarantine: AsyncScript = redis.register_script(_source("unquarantine", "stream_end"))
        self.trim_alerts: AsyncScript = redis.register_script(_source("trim_alerts"))
        self.customer_write: AsyncScript = redis.register_script(_source("customer_write"))
