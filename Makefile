# The two commands of the README, and a few helpers. Every target runs the idempotent
# set-up first, so a fresh Debian 12 machine needs nothing else; a second run is quick.
VENV   := .venv
PYTHON := $(VENV)/bin/python
ARGS   ?=

.PHONY: setup run quick test unit integration lint mutate clean

setup:
	@bash scripts/setup.sh

run: setup  ## the default experiment suite (two-node topology); ARGS="--quick" etc.
	$(PYTHON) experiments/run.py $(ARGS)

quick: setup
	$(PYTHON) experiments/run.py --quick $(ARGS)

test: setup  ## lint, unit tests (no root) and integration tests (root, real Mininet)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -ra $(ARGS)

unit: setup
	$(VENV)/bin/pytest -ra tests/unit $(ARGS)

integration: setup
	$(VENV)/bin/pytest -ra tests/integration $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .

mutate: setup  ## mutation testing of the verdicts, parsers and statistics (minutes; no root)
	$(PYTHON) scripts/mutate.py $(ARGS)

clean: setup  ## remove what a crashed run left behind (recorded objects only)
	$(VENV)/bin/testbed clean
