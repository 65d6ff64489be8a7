"""`tally dev` picks its store: TALLY_REDIS_URL, else redis-server on PATH with AOF, else fakeredis, with a warning."""

from pathlib import Path

import pytest
from redis import Redis as SyncRedis

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


async def test_a_port_another_server_took_first_is_never_handed_back_as_the_dev_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A free port is free only when looked at: if another server binds it first, the started redis-server (which
    cannot bind it) is not taken for one that answers there; `tally dev` starts on another port."""
    port = stores.free_port()
    other = stores.start_redis_server(tmp_path / "other", port, fsync="no")
    try:
        with pytest.raises(stores.PortTaken):
            stores.start_redis_server(tmp_path / "late", port, fsync="no")
        ports = iter([port, stores.free_port()])
        monkeypatch.setattr(stores, "free_port", lambda: next(ports))
        with embedded_store(None, str(tmp_path / "data"), lambda said: None) as connect:
            client = connect()
            await client.set("k", "v")
            info = await client.info("server")
            await client.aclose()
        assert int(info["tcp_port"]) != port and int(info["process_id"]) != other.pid
        with SyncRedis(port=port) as on_the_taken_port:
            assert not on_the_taken_port.exists("k")
    finally:
        other.terminate()
        other.wait(timeout=10)

