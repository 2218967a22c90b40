# headwater: `make demo` runs the quickstart on embedded defaults; `make test` runs the suite.
# Both create .venv and install the pinned dependencies (requirements.lock) on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= headwater-demo

.PHONY: demo test test-fast lint format lock services dev clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

dev: $(STAMP)

demo: $(STAMP)
	$(BIN)/headwater quickstart $(DEMO)

services:
	scripts/services.sh start
	scripts/browser.sh
	scripts/monitoring.sh

# Three workers, each taking whole files: most of the suite's time is spent waiting on
# servers, bakes and brokers, so three share two cores well. JOBS=0 runs it serially.
JOBS ?= 3

test: $(STAMP) services
	$(BIN)/python -m pytest $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist loadfile)

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_layers.py

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks

# Re-pin every dependency after editing pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra all --extra dev --python-version 3.11 \
		--native-tls -o requirements.lock

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache
