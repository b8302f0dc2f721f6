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

# Two pytest workers: most tests are single-threaded XLA compiles, so two cores
# finish the suite in a little over half the time of one worker; conftest.py puts
# the slow tests first so neither worker ends with one alone.
PYTEST_ARGS ?= -n 2 --dist load
test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=20 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .jax_cache .pytest_cache
