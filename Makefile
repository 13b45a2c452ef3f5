# PVC: the two commands of the README, plus lab-down.
VENV := .venv
LAB_ARGS ?=

.PHONY: lab test lab-down install lint bench

install:
	@scripts/setup.sh

lab: install
	@$(VENV)/bin/pvc-lab up $(LAB_ARGS)

lab-down:
	@if [ -x $(VENV)/bin/pvc-lab ]; then $(VENV)/bin/pvc-lab down; else echo "no lab tooling installed; nothing to stop"; fi

test: install
	@$(VENV)/bin/ruff check src tests bench
	@$(VENV)/bin/python -m pytest

lint: install
	@$(VENV)/bin/ruff check src tests bench

bench: install
	@$(VENV)/bin/python -m bench.run_all
