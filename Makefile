# gameplay-analytics — one venv (.venv), reused between runs; `make help` lists targets.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install test lint typecheck unit client-test demo up check-analytics-schema bench test-ws kind-e2e clean dbt dbt-venv

help:
	@echo "make demo    run the whole pipeline locally with synthetic players, then a report"
	@echo "make test    lint, type-check and run the test suite"
	@echo "make check-analytics-schema   the schema gate CI runs"
	@echo "make bench   benchmarks as ratios against the raw limits of the parts"
	@echo "make dbt     the daily job: dbt build on the running stack's hot store + summary (.data/local/daily)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# dbt in a virtualenv of its own (.venv/dbt): dbt-core<1.12 pins pathspec<0.13, mypy needs >=1.
DBT_VENV  := $(VENV)/dbt
DBT_STAMP := $(DBT_VENV)/.installed
DAILY_ARGS ?=

$(DBT_STAMP): analytics/dbt/requirements.txt | $(STAMP)
	@test -x $(DBT_VENV)/bin/python || $(PYTHON) -m venv $(DBT_VENV)
	$(DBT_VENV)/bin/pip install -q -r analytics/dbt/requirements.txt
	@touch $(DBT_STAMP)

dbt-venv: $(DBT_STAMP)

# The daily job on a running `gameplay-analytics up` (or pass DAILY_ARGS="--dsn … --day …").
dbt: $(STAMP) $(DBT_STAMP)
	$(BIN)/gameplay-analytics insights daily --out .data/local/daily --dbt always $(DAILY_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check gameplay_analytics tests bench
	$(BIN)/ruff format --check gameplay_analytics tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(DBT_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck check-analytics-schema unit client-test

# The TypeScript SDK (client/): npm installs into client/node_modules once (again only when the
# lock file changes), builds, then node's test runner: unit tests, the bundle size budget, and a
# real stack (`gameplay-analytics up` through this venv's Python) driven from Node and Chromium.
CLIENT_STAMP := client/node_modules/.installed

$(CLIENT_STAMP): client/package.json client/package-lock.json
	cd client && npm ci --no-audit --no-fund
	@touch $(CLIENT_STAMP)

client-test: $(STAMP) $(CLIENT_STAMP)
	cd client && npm run build && CLIENT_TEST_PYTHON=$(abspath $(BIN)/python) \
		node --experimental-websocket --test test/

check-analytics-schema: $(STAMP)
	$(BIN)/gameplay-analytics schema check

demo: $(STAMP)
	$(BIN)/gameplay-analytics demo

up: $(STAMP)
	$(BIN)/gameplay-analytics up

# Load test (issue 7): 500 synthetic players for ~60 s against a fresh local stack; exits 1 if
# any event an SDK saw acked is missing from Postgres or stored twice. Plot and figures in .data/.
test-ws: $(STAMP)
	@mkdir -p .data
	$(BIN)/gameplay-analytics load --players 500 --seconds 60 --plot .data/test-ws.png --json .data/test-ws.json
	@$(BIN)/python -c "import json; s = json.load(open('.data/test-ws.json')); print(f\"test-ws: {s['players']} players, {s['offered_per_s']:,}/s offered, backpressure refusals {s['backpressure_replies']:,.0f} (rate_limited {s['rate_limited_replies']:,.0f}), p95 track()->commit {s['p95_ms']} ms, every acked event stored once: {s['ok']}\")"

bench: $(STAMP)
	$(BIN)/python bench/run.py

# A real cluster: kind + the image + NATS + Postgres + the chart, then tests/e2e (CI's kind job).
kind-e2e: $(STAMP)
	E2E_PYTHON=$(BIN)/python scripts/kind-e2e.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
