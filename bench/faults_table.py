"""Run the fault-injection suite and print its table: python -m bench.faults_table [--full] [--keep DIR].

The fast scenarios are those of `make test`; --full runs the long ones (@pytest.mark.slow, as `make faults` does).
Each row reads (scenario, events, faults injected, lost, duplicated, drift); the table is printed at the end and
kept in DIR/faults0/faults_table.txt (pytest's --basetemp).
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

SUITE = "tests/fault/test_faults.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the long scenarios (@pytest.mark.slow)")
    parser.add_argument("--keep", default=".tally/faults-run", help="pytest --basetemp (the table is kept there)")
    args = parser.parse_args()
    basetemp = Path(args.keep).resolve()
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", SUITE, "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}",
               "-m", "slow" if args.full else "not slow"]
    code = subprocess.run(command, check=False).returncode
    table = basetemp / "faults0" / "faults_table.txt"
    print(f"\n{'full' if args.full else 'fast'} fault suite: exit {code} in {time.monotonic() - started:.0f} s")
    print(table.read_text() if table.exists() else f"no table was written ({table} is missing)")
    return code


if __name__ == "__main__":
    sys.exit(main())
