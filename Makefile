# tally — developer entry points. Every target installs what it needs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck unit bench faults cluster clean pure

# The install compiles the modules listed in pyproject.toml [tool.tally.mypyc] with mypyc (setup.py), so it is
# redone when any domain/ source changes (domain/build_check.py refuses a stale build at import time anyway).
$(STAMP): pyproject.toml setup.py $(wildcard domain/*.py)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/tally dev

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/pytest -m "not slow" --durations=25

unit: $(STAMP)
	$(BIN)/pytest tests/unit

faults: $(STAMP)
	$(BIN)/pytest -m slow tests

# The integration, contract, SDK e2e and crash (fast fault) suites again, every store a real local 3-primary Redis Cluster
# (tests/support/redis_cluster.py); `make test` runs a representative subset on it (tests/integration/test_cluster.py,
# the contract suite's cluster backend, tests/e2e/test_sdk_cluster.py).
cluster: $(STAMP)
	TALLY_TEST_CLUSTER=1 $(BIN)/pytest -m "not slow" --durations=25 tests/contract tests/integration tests/e2e tests/fault

bench: $(STAMP)
	$(BIN)/python -m bench.run

# Pure Python instead of the compiled modules (until the next install that the stamp's sources trigger, or
# `rm .venv/.installed && make`): removes the extensions and reinstalls without compiling.
pure: $(STAMP)
	TALLY_BUILD_PURE=1 $(BIN)/pip install -q --no-deps -e .
	rm -f domain/*.so *__mypyc.*.so domain/compiled.json

clean:
	rm -rf $(VENV) .tally .pytest_cache .mypy_cache .ruff_cache build domain/*.so *__mypyc.*.so domain/compiled.json
