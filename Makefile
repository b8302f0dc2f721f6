# Two commands on a fresh machine with Python 3.11+ and make:
#   make quickstart   set up .venv, then a small end-to-end discovery on CPU
#   make test         set up .venv, then the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stamps: driftlab and its dependencies; then the test tools (pytest, ruff, mypy,
# nbclient, wandb).
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: quickstart test lint bench clean

# Bytecode goes to .venv/pycache, also where PYTHONDONTWRITEBYTECODE is set: there,
# every driftlab process would compile each module it imports afresh (about 2,400,
# 6-10 s a process; the quickstart runs two, the tests many).
export PYTHONPYCACHEPREFIX := $(CURDIR)/$(VENV)/pycache
unexport PYTHONDONTWRITEBYTECODE

# Re-install whenever the dependency list or the pins change. `make quickstart`
# installs only what driftlab needs (a quicker first run); `make test` adds `.[test]`.
# The venv's own pip is used (Python 3.11's supports editable installs; upgrading it
# fetched whatever pip was newest, untested), and `--no-compile` leaves the .pyc
# files to first import instead of compiling every installed module.
PIP := $(BIN)/python -m pip install --quiet --no-compile -c constraints.txt
# requirements.lock is the exact set that `$(PIP) -e .` resolves to on Python 3.11: it is
# installed with --no-deps (nothing to resolve) in two halves side by side, as pip
# spends most of an install on one package at a time, looking it up, then unpacking
# it. `pip check` then confirms the set is complete on this Python; where it is not
# (another Python's markers), the resolving install fills the gaps.
LOCK := requirements.lock
$(STAMP): pyproject.toml constraints.txt $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@pins=$$(sed 's/#.*//' $(LOCK)); \
	  $(PIP) --no-deps $$(printf '%s\n' $$pins | sed -n 'p;n') & first=$$!; \
	  $(PIP) --no-deps $$(printf '%s\n' $$pins | sed -n 'n;p'); second=$$?; \
	  wait $$first && [ $$second -eq 0 ]
	$(PIP) --no-deps -e .
	@$(BIN)/python -m pip check >/dev/null || { \
	  echo "$(LOCK) is incomplete on this Python (pip check): resolving the rest"; \
	  $(PIP) -e .; }
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PIP) -e ".[test]"
	@touch $(TEST_STAMP)

quickstart: $(STAMP)
	$(BIN)/driftlab quickstart

# Two pytest processes, one after the other (both always run; the worse status is
# the result). Most tests are compile-bound: XLA's -O0 backend halves their time
# (tests/test_trainer.py: 380 s -> 223 s, cold cache), and XLA's older CPU fusion
# emitters compile faster than its MLIR ones (the not-learning tests: 1156 s -> 1055 s
# on the 2-core machine, cold cache; tests/test_envs.py + test_trainer.py 159 s ->
# 129 s). Tracing, lowering and compiling are single-threaded and 83% of those tests'
# time (test_transfer, test_discover_families, test_envs), so they run in two xdist
# workers (TEST_WORKERS): 987 s -> 602 s for the not-learning tests on the 2-core
# machine, cold cache (`--dist loadfile`, whole files to a worker: 742 s, as the
# last file ran alone). The `learning` tests are run-bound (each run uses both cores;
# two workers over the whole suite, learning tests included, once took 52 min to reach
# 91%; two workers on them alone: 405 s, against 467 s in one process), so they run
# after, in one process, with full optimisation and the default emitters (with the
# older ones CartPole's two learning tests took 68 s, not 46 s). A user's XLA_FLAGS
# (e.g. --xla_cpu_max_isa=AVX2) apply to both; `make test TEST_WORKERS=0` runs the
# first process without workers.
TEST_WORKERS ?= 2
PYTEST_ARGS ?=
test: $(TEST_STAMP)
	@status=0; \
	XLA_FLAGS="--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false $$XLA_FLAGS" \
	  $(BIN)/python -m pytest -q -m "not learning" -n $(TEST_WORKERS) --durations=15 \
	    $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/python -m pytest -q -m learning --durations=10 $(PYTEST_ARGS) || \
	  { s=$$?; [ $$s -eq 5 ] || status=$$s; }; \
	[ $$status -eq 5 ] && status=0; exit $$status

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .jax_cache .pytest_cache
