#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: install the CUDA build of JAX into a venv and
# run benchmarks/gpu.py (under 8 minutes). Results: ${OUT:-benchmarks/results}/gpu.json.
#   bash benchmarks/gpu.sh            # the measurement
#   bash benchmarks/gpu.sh --quick    # a CPU test of the script
#   bash benchmarks/gpu.sh --offline WHEELDIR [gpu.py options]
#       for a machine with no network whose python3 (or $PYTHON) already has a CUDA
#       JAX, flax, optax, numpy, scipy, matplotlib, pyyaml, tqdm, sympy, six and
#       setuptools: a venv at ${VENV:-/tmp/driftlab-gpu} sees that interpreter's
#       packages (through a .pth file, which works also when $PYTHON is itself a
#       venv) and gets every wheel in WHEELDIR (gymnax, evosax and what they need
#       beyond the image, e.g. dotmap, gymnasium, farama-notifications) plus an
#       editable driftlab, all with --no-index --no-deps. Make WHEELDIR elsewhere with
#         pip download --no-deps --only-binary=:all: --python-version 3.12 -d WHEELDIR \
#           gymnax==1.0.1 evosax==0.3.2 dotmap==1.3.30 gymnasium==1.3.0 farama-notifications==0.0.6
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "${1:-}" = "--offline" ]; then
  WHEELS=$(cd "${2:?--offline needs a folder of wheels}" && pwd)
  shift 2
  VENV=${VENV:-/tmp/driftlab-gpu}
  "$PY" -m venv --without-pip "$VENV"
  SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$PY" -c 'import site; print("\n".join(site.getsitepackages()))' >"$SITE/_driftlab_image.pth"
  "$VENV/bin/python" -m pip install --quiet --no-index --no-deps "$WHEELS"/*.whl
  "$VENV/bin/python" -m pip install --quiet --no-index --no-deps --no-build-isolation -e .
  "$VENV/bin/python" -c 'import jax, gymnax, evosax, driftlab.discovery.loop; print("jax", jax.__version__, jax.devices())'
  mkdir -p "${OUT:-benchmarks/results}"
  exec "$VENV/bin/python" benchmarks/gpu.py --out "${OUT:-benchmarks/results}/gpu.json" "$@"
fi
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install --quiet -c constraints.txt -e .
if [ "${1:-}" != "--quick" ]; then
  .venv/bin/python -m pip install --quiet -U "jax[cuda13]==$(.venv/bin/python -c 'import jax; print(jax.__version__)')"
fi
mkdir -p "${OUT:-benchmarks/results}"
.venv/bin/python benchmarks/gpu.py --out "${OUT:-benchmarks/results}/gpu.json" "$@"
