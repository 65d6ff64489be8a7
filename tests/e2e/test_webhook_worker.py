"""`tally webhooks` as its own process: it takes the sender lease, and SIGTERM makes it give the lease back and exit 0
(the next sender starts at once instead of waiting for the lease to expire)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from store.connect import connect_sync
from store.keys import Keys
from tests.support.dev_server import PARTITIONS, ROOT

DEADLINE = 20.0


def test_sigterm_releases_the_sender_lease_and_exits_cleanly(redis_url: str, tmp_path: Path) -> None:
    client = connect_sync(redis_url, decode_responses=True)
    client.flushdb()
    lease = Keys(PARTITIONS).webhook_lease()
    env = {name: value for name, value in os.environ.items() if not name.startswith("TALLY_")}
    env.update(TALLY_REDIS_URL=redis_url, TALLY_PARTITIONS=str(PARTITIONS), TALLY_LEASE_TTL_MS="60000")
    log = tmp_path / "webhooks.log"
    command = [sys.executable, "-c", "from cli.main import run; run()", "webhooks", "--holder", "e2e-sender"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DEADLINE
        while not (client.get(lease) or "").startswith("e2e-sender#"):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no lease taken in {DEADLINE}s:\n{log.read_text()}"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE) == 0, log.read_text()
        assert client.get(lease) is None, "the lease was not given back"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
