# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
ANVIL := node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil

.PHONY: install system-tools demo test lint typecheck bench openapi clean

install: $(VENV)/.installed node_modules/.installed

# Debian packages the tests and benchmarks drive: a real headless browser for the status-page
# test, and native HTTP load generators for bench/api_load.py. Installed once, when missing.
SYSTEM_TOOLS := /usr/bin/chromium /usr/bin/chromedriver /usr/bin/wrk
system-tools:
	@missing=""; for tool in $(SYSTEM_TOOLS); do [ -x $$tool ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing chromium, chromium-driver and wrk (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver wrk >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	test -x $(ANVIL)
	touch $@

demo: install
	$(BIN)/xmargin demo

test: install system-tools
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check aggregator chains tests bench migrations
	$(BIN)/ruff format --check aggregator chains tests bench migrations

typecheck: install
	$(BIN)/mypy

openapi: install
	$(BIN)/python -m aggregator.api.openapi_doc > docs/openapi.json

bench: install system-tools
	$(BIN)/python bench/evm_poll.py
	$(BIN)/python bench/solana_poll.py
	$(BIN)/python bench/hyperliquid_poll.py
	$(BIN)/python bench/valuation.py
	$(BIN)/python bench/publish.py --sizes 10000,30000
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/scale/queue_ceiling.py
	$(BIN)/python bench/scale/wallet_scaling.py --sizes 10000,100000
	$(BIN)/python bench/scale/kill_mid_shard.py --kills 4 --users 4000
	$(BIN)/python bench/scale/activity_vs_sweep.py --wallets 5000 --shards 64 --blocks 4

clean:
	rm -rf $(VENV) node_modules .xmargin
