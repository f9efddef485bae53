# One command to start a local cluster, one to test; both build the virtualenv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint test-fast clean bench bench-quick

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/shardgate dev --data ./data --port 8080

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -m "not slow" tests/unit tests/functional

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache

# Benchmarks beside SeaweedFS (not part of `make test`): `bench` takes about 20 minutes and
# writes BENCHMARKS.md; `bench-quick` is a one-minute smoke run that prints its report.
BENCH_STAMP := $(VENV)/.bench-installed-stamp

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --out BENCHMARKS.md --raw bench/last-run.json

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --quick
