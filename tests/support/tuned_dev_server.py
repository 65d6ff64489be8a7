"""`tally dev` as a real subprocess with extra TALLY_* settings (fast webhook backoff, short leases, …)."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli.stores import free_port
from tests.support.dev_server import KEY, PARTITIONS, ROOT, DevServer, _stop, _wait_healthy


@contextmanager
def tuned_dev_server(redis_url: str, workdir: Path, **settings: str) -> Iterator[DevServer]:
    """Like tests.support.dev_server.dev_server, plus `TALLY_<NAME>=value` for each keyword; stopped on exit."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("TALLY_")}
    env.update(TALLY_REDIS_URL=redis_url, TALLY_DATA_DIR=str(workdir / "data"), TALLY_PARTITIONS=str(PARTITIONS))
    env.update({f"TALLY_{name.upper()}": value for name, value in settings.items()})
    log = workdir / "tally-dev.log"
    command = [sys.executable, "-c", "from cli.main import run; run()", "dev", "--port", str(port), "--api-key", KEY]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, url, log)
        yield DevServer(url=url, redis_url=redis_url, log=log)
    finally:
        _stop(process)
