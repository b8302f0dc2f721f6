#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: install the CUDA build of JAX into a venv and
# run benchmarks/gpu.py (under 8 minutes). Results: ${OUT:-benchmarks/results}/gpu.json.
#   bash benchmarks/gpu.sh            # the measurement
#   bash benchmarks/gpu.sh --quick    # a CPU test of the script
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install --quiet -c constraints.txt -e .
if [ "${1:-}" != "--quick" ]; then
  .venv/bin/python -m pip install --quiet -U "jax[cuda13]==$(.venv/bin/python -c 'import jax; print(jax.__version__)')"
fi
mkdir -p "${OUT:-benchmarks/results}"
.venv/bin/python benchmarks/gpu.py --out "${OUT:-benchmarks/results}/gpu.json" "$@"
