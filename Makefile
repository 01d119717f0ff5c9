# FreshClaim: `make run` sets up and starts the service; `make test` sets up and runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export FRESHCLAIM_HOME ?= $(CURDIR)/var

.PHONY: run serve-deps dev-deps test lint bench train evaluate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,train,s3]'
	touch $@ $(VENV)/.serve

serve-deps: $(VENV)/.serve
dev-deps: $(VENV)/.dev

run: serve-deps
	$(BIN)/freshclaim migrate
	$(BIN)/freshclaim serve --host $(HOST) --port $(PORT)

lint: dev-deps
	$(BIN)/ruff check .

test: dev-deps
	scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	FRESHCLAIM_REQUIRE_POSTGRES=$${FRESHCLAIM_REQUIRE_POSTGRES:-1} $(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: dev-deps
	$(BIN)/python -m bench.run_all

train: dev-deps
	$(BIN)/python -m training.pipeline

clean:
	rm -rf $(VENV) var .pytest_cache
