# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
ANVIL := node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil

.PHONY: install demo test lint typecheck bench clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	test -x $(ANVIL)
	touch $@

demo: install
	$(BIN)/xmargin demo

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check aggregator chains tests bench migrations
	$(BIN)/ruff format --check aggregator chains tests bench migrations

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/evm_poll.py
	$(BIN)/python bench/solana_poll.py
	$(BIN)/python bench/valuation.py

clean:
	rm -rf $(VENV) node_modules .xmargin
