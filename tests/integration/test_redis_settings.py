"""tally's redis-server settings (cli/stores.py REDIS_SETTINGS): the servers tally starts have them, and a projector
on a server without them says so in its log, naming each setting and what tally is sized for."""

import asyncio
import logging
from pathlib import Path

import pytest
from redis.asyncio import Redis

from cli.settings import Settings
from cli.stores import REDIS_SETTINGS, free_port, settings_advice, start_redis_server
from cli.wiring import run_projector


async def test_a_server_tally_starts_has_its_settings(tmp_path: Path) -> None:
    port = free_port()
    server = start_redis_server(tmp_path, port, fsync="no")
    redis = Redis(port=port)
    try:
        assert await settings_advice(redis) == []
        for flag, wanted in zip(REDIS_SETTINGS[::2], REDIS_SETTINGS[1::2], strict=True):
            found = await redis.config_get(flag.removeprefix("--"))
            assert found[flag.removeprefix("--")] == wanted
    finally:
        await redis.aclose()
        server.terminate()
        server.wait(timeout=10)


async def test_a_server_with_redis_defaults_is_named_setting_by_setting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    server = start_redis_server(tmp_path, port, fsync="no", settings=())
    redis = Redis(port=port)
    try:
        advice = await settings_advice(redis)
        assert len(advice) == len(REDIS_SETTINGS) // 2
        assert any("stream-node-max-bytes 4096; tally is sized for 1024" in line for line in advice), advice
        assert any("hash-max-listpack-value 64; tally is sized for 512" in line for line in advice), advice
        stop = asyncio.Event()
        stop.set()  # the projector checks the store and the server, then stops at once
        with caplog.at_level(logging.WARNING, logger="tally.wiring"):
            await run_projector(redis, Settings(partitions=4, archive_interval_seconds=0), stop, "settings-test")
        logged = [r.getMessage() for r in caplog.records if r.name == "tally.wiring"]
        assert logged == advice
        await redis.config_set("stream-node-max-bytes", "1024")
        await redis.config_set("hash-max-listpack-value", "512")
        assert await settings_advice(redis) == []
    finally:
        await redis.aclose()
        server.terminate()
        server.wait(timeout=10)
