"""Measure the seed distribution behind every learning test's bar (issue 17).

A learning test passes or fails on a statistic of a few seeds (the mean of 4
final returns, say). Its bar must hold for at least 99% of seed sets, on any
CPU: another CPU's rounding is in effect another draw of seeds. This script
trains each test's exact configuration on many fresh seeds (keys split from
`key(1000)`, never the tests' own `key(0)` seeds) and records every seed's
final return; `bars.py` turns them into the 1% quantile of each test's
statistic over seed sets (bootstrap), which is where the bars are put.

    python tests/calibration/measure.py [--seeds 32] [--only NAME ...]
    python tests/calibration/bars.py      # the quantiles, from the JSON

Results accumulate in tests/calibration/learning-bars.json (one entry per case,
written atomically after each case, so an interrupted measurement keeps what it
finished). `XLA_FLAGS=--xla_cpu_max_isa=AVX2` gives a second CPU's rounding;
entries record the flags they ran under.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # `tests` as a package, to share the tests' helpers
RESULTS = HERE / "learning-bars.json"
CHUNK = 8  # seeds per vmapped jit: 8 keep Breakout's rollouts small and still amortise compiles


def _keys(n: int, offset: int = 0):
    import jax

    return jax.random.split(jax.random.key(1000), offset + n)[offset:]


def _chunked(fn: Callable, n: int) -> list[float]:
    """fn(keys) -> per-seed finals, called CHUNK seeds at a time."""
    import numpy as np

    out: list[float] = []
    for start in range(0, n, CHUNK):
        out += [float(x) for x in np.asarray(fn(_keys(min(CHUNK, n - start), start)))]
    return out


def cases() -> dict[str, Callable[[int], dict]]:
    """name -> measure(seeds) -> {'finals': [...]} or several named lists."""
    from tests.test_brax_parity import train_brax_cpu
    from tests.test_learning import train_seeds

    def learning(env_id: str, algo: str, steps: int, **overrides):
        return lambda n: {"finals": _chunked(
            lambda k: train_seeds(env_id, algo, steps, keys=k, **overrides), n)}

    def shipped(n):
        from driftlab.algorithms import make_drift
        from driftlab.algorithms.drift_io import load_drift
        from tests.test_shipped_learning import finals

        ppo = make_drift("ppo")
        drifts = {"ppo": (ppo, ppo.default_params), "lpo-cartpole": load_drift("lpo-cartpole"),
                  "lpo-cartpole-formula": load_drift("lpo-cartpole-formula")}
        return {name: _chunked(lambda k, d=d, p=p: finals(d, p, keys=k), n)
                for name, (d, p) in drifts.items()}

    def distilled_dpo(n):
        from tests.test_distill import distilled_dpo_finals

        return distilled_dpo_finals(n, key_offset=1000)

    def es_gains(n):
        import tempfile

        from tests.test_discovery_es import es_gain

        out: dict[str, list[float]] = {"gain": [], "noise": []}
        for seed in range(n):  # the ES's own seed: its members, keys and evaluation seeds
            with tempfile.TemporaryDirectory() as scratch:
                gain, noise, _, _ = es_gain(Path(scratch), seed=1000 + seed)
            out["gain"].append(gain)
            out["noise"].append(noise)
        return out

    return {
        "discovery-es-gain": es_gains,
        "cartpole-ppo-5e5": learning("gymnax/CartPole-v1", "ppo", 500_000),
        "cartpole-dpo-5e5": learning("gymnax/CartPole-v1", "dpo", 500_000),
        "cartpole-ppo-3e5": learning("gymnax/CartPole-v1", "ppo", 300_000),
        "cartpole-dpo-3e5": learning("gymnax/CartPole-v1", "dpo", 300_000),
        "pendulum-ppo-4e5": learning("gymnax/Pendulum-v1", "ppo", 400_000),
        "breakout-ppo-5e5": learning("gymnax/Breakout-MinAtar", "ppo", 500_000),
        "breakout-dpo-5e5": learning("gymnax/Breakout-MinAtar", "dpo", 500_000),
        "inverted-pendulum-brax-mode-2e6": lambda n: {"finals": _chunked(
            lambda k: train_brax_cpu({}, eps=0.3, keys=k), n)},
        # The same with the preset's own normaliser, updated once per update (Brax's).
        "inverted-pendulum-brax-mode-obs-update-2e6": lambda n: {"finals": _chunked(
            lambda k: train_brax_cpu({"obs_norm_update": "update"}, eps=0.3, keys=k), n)},
        "shipped-cartpole": shipped,
        "distilled-dpo-cartpole-1e5": distilled_dpo,
    }


def _write(results: dict, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(results, handle, indent=1)
        handle.write("\n")
    os.replace(tmp, path)


def main() -> int:
    import tests.conftest  # noqa: F401  the tests' persistent compilation cache: one compile per case

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--only", nargs="*", help="case names (default: all)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="JSON file the entries accumulate in (default %(default)s)")
    args = parser.parse_args()
    table = cases()
    unknown = set(args.only or []) - set(table)
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; known: {sorted(table)}")
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    for name in args.only or table:
        start = time.perf_counter()
        measured = table[name](args.seeds)
        entry = {"seeds": args.seeds, "seconds": round(time.perf_counter() - start, 1),
                 "xla_flags": os.environ.get("XLA_FLAGS", ""), "machine": platform.machine(),
                 **measured}
        results.setdefault(name, []).append(entry)
        _write(results, args.results)
        print(f"{name}: {entry['seconds']} s " + ", ".join(
            f"{k} mean {sum(v) / len(v):.1f} min {min(v):.1f}" for k, v in measured.items()),
            flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
