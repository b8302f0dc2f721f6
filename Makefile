# Two commands on a fresh machine with Python 3.11+ and make:
#   make quickstart   set up .venv, then a small end-to-end discovery on CPU
#   make test         set up .venv, then the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test lint bench clean

# Re-install whenever the dependency list or the pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/driftlab quickstart

# One pytest process, as in every CI run that passed: two xdist workers did not
# finish sooner on the 2-core machine (52 min to 91%, both processes' XLA thread
# pools on the same 2 cores); `make test PYTEST_ARGS="-n 2"` tries them.
PYTEST_ARGS ?=
test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=20 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .jax_cache .pytest_cache
