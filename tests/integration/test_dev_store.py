"""`tally dev` picks its store: TALLY_REDIS_URL, else redis-server on PATH with AOF, else fakeredis, with a warning."""

from pathlib import Path

import pytest

from cli import stores
from cli.stores import embedded_store


async def test_a_redis_server_on_path_is_started_with_append_only_files(tmp_path: Path) -> None:
    said: list[str] = []
    with embedded_store(None, str(tmp_path / "data"), said.append) as connect:
        client = connect()
        await client.set("k", "v")
        config = await client.config_get("appendonly")
        fsync = await client.config_get("appendfsync")
        await client.aclose()
    assert config == {"appendonly": "yes"} and fsync == {"appendfsync": "always"}
    assert any((tmp_path / "data").rglob("*.aof*")), "the AOF lives in the data directory"
    assert "AOF" in said[0]


async def test_without_redis_server_it_falls_back_to_fakeredis_and_says_nothing_persists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores.shutil, "which", lambda name: None)
    said: list[str] = []
    with embedded_store(None, str(tmp_path), said.append) as connect:
        client = connect()
        await client.set("k", "v")
        assert await client.get("k") == b"v"
        assert await client.eval("return redis.call('XADD', KEYS[1], '*', 'f', 'v')", 1, "s")  # Lua works
        await client.aclose()
    assert "NOTHING PERSISTS" in said[0]


async def test_a_redis_url_wins(redis_url: str, tmp_path: Path) -> None:
    said: list[str] = []
    with embedded_store(redis_url, str(tmp_path), said.append) as connect:
        client = connect()
        assert await client.ping()
        await client.aclose()
    assert said == [] and not any(tmp_path.iterdir())
