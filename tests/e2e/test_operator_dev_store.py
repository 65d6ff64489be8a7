"""Operator commands beside a running `tally dev`: without TALLY_REDIS_URL they find the redis-server it started (the
file it keeps in its data dir while it runs), and say clearly what to do when there is none. Its start-up logs one
summary line of the partitions it holds, not a line per partition lease."""

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.dev_server import PARTITIONS, ROOT, dev_server

DEADLINE = 30.0


def tally(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`tally ARGS` with no TALLY_REDIS_URL, the data dir `tally dev` uses in `workdir`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TALLY_")}
    env.update(TALLY_DATA_DIR=str(workdir / "data"), TALLY_PARTITIONS=str(PARTITIONS))
    return subprocess.run([sys.executable, "-c", "from cli.main import run; run()", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_lag_and_verify_find_the_store_of_a_running_tally_dev_and_say_so_when_there_is_none(tmp_path: Path) -> None:
    alone = tally(tmp_path, "lag")
    assert alone.returncode == 2 and "no running `tally dev`" in alone.stderr, alone.stderr

    with dev_server("", tmp_path) as server:  # no TALLY_REDIS_URL: tally dev starts its own redis-server
        assert (tmp_path / "data" / "dev-store.json").exists()
        lag = tally(tmp_path, "lag")
        assert lag.returncode == 0, lag.stderr
        assert "redis-server at redis://127.0.0.1:" in lag.stderr
        assert lag.stdout.count("\n") >= PARTITIONS and "lease holder" in lag.stdout
        verify = tally(tmp_path, "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr

        deadline = time.monotonic() + DEADLINE
        while f"projector holds {PARTITIONS}/{PARTITIONS} partitions" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.05)
        assert "lease partition=" not in server.log.read_text(), "per-partition lease lines are debug only"

    assert not (tmp_path / "data" / "dev-store.json").exists(), "removed when tally dev stops"
    after = tally(tmp_path, "lag")
    assert after.returncode == 2 and "no running `tally dev`" in after.stderr, after.stderr
