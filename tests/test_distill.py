"""Distillation into closed-form drifts (issue 4): family recovery, symbolic
search, export loadable as `--algo distilled`, training parity on CartPole."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import sympy

from driftlab.algorithms import Drift, make_drift
from driftlab.algorithms.drift_io import load_drift
from driftlab.analysis.distill import (
    candidate_json,
    distill,
    fit_families,
    r,
    refine_constants,
    sample_drift,
    score_candidate,
    symbolic_regression,
    write_distillation,
)
from driftlab.analysis.surfaces import DriftSource, load_source
from driftlab.cli import main


def _family(result, prefix):
    return next(c for c in result.candidates if c.family.startswith(prefix))


def test_distilling_dpo_recovers_alpha_and_beta():
    result = distill(load_source("dpo"), symbolic=False)
    best = result.best
    assert best.family == "dpo[A>=0: r-1, A<0: log r]", result.table()
    assert best.constants["alpha"] == pytest.approx(2.0, rel=0.05)
    assert best.constants["beta"] == pytest.approx(0.6, rel=0.05)
    assert best.r2 > 0.999 and best.conditions.passed


def test_distilling_ppo_recovers_eps():
    train, heldout = sample_drift(load_source("ppo"), points=41)
    ranked = sorted((score_candidate(c, heldout, check=False) for c in fit_families(train)),
                    key=lambda c: c.score)
    assert ranked[0].family == "ppo-clip"
    assert ranked[0].constants["eps"] == pytest.approx(0.2, rel=0.05)
    assert ranked[0].r2 > 0.999


def test_symbolic_search_fits_a_formula_outside_the_families():
    # |A| is neither polynomial nor DPO/PPO-shaped.
    source = DriftSource("abs-A", Drift("abs-A", lambda p, r, lr, a, q:
                                         0.5 * jnp.abs(a) * (r - 1) ** 2, {}), {})
    train, heldout = sample_drift(source, points=41, heldout=1000)
    start = time.time()
    candidates = symbolic_regression(train, population=1000, generations=15, max_points=500,
                                     top=2, seed=0)
    best = max((score_candidate(c, heldout) for c in candidates), key=lambda c: c.r2)
    print(f"symbolic: {best.values}  R2={best.r2:.6f}  ({time.time() - start:.1f} s)")
    assert best.r2 >= 0.99
    assert best.conditions.passed
    # The exported JSON rebuilds the same function through the drift registry.
    drift = make_drift("distilled", **{k: v for k, v in candidate_json(best, "abs-A", 1).items()
                                       if k in ("expression", "constants")})
    r, a = jnp.array([0.7, 1.3, 1.0]), jnp.array([-2.0, 3.0, 1.0])
    np.testing.assert_allclose(drift.on_grid(drift.default_params, r, a),
                               0.5 * np.abs(a) * (r - 1) ** 2, atol=0.05)


def test_refining_a_formula_that_is_not_finite_keeps_it_and_ranks_it_last():
    # What symbolic search can propose: log(r - 2) is NaN on the whole sample (r <= 1.8).
    train, heldout = sample_drift(load_source("ppo"), points=21)
    candidate = refine_constants(3.0 * sympy.log(r - 2.0), train)
    assert sorted(candidate.constants.values()) == [-2.0, 3.0]
    assert score_candidate(candidate, heldout, check=False).r2 == -math.inf


def test_distill_cli_writes_loadable_drift(tmp_path, capsys):
    out = tmp_path / "distill"
    assert main(["distill", "ppo", "--no-symbolic", "--points", "31", "--out", str(out)]) == 0
    assert "ppo-clip" in capsys.readouterr().out
    for name in ("drift.json", "candidate_1.json", "candidates.json", "formulas.md",
                 "source_vs_best.png", "config.yaml"):
        assert (out / name).is_file(), name
    spec = json.loads((out / "drift.json").read_text())
    assert spec["kind"] == "distilled" and spec["latex"] and spec["fit"]["conditions_pass"]
    for path in (out, out / "drift.json"):  # a directory or the file
        drift, params = load_drift(path)
        reference = make_drift("ppo")
        r = jnp.linspace(0.5, 1.6, 23)[:, None]
        a = jnp.linspace(-3, 3, 13)[None]
        np.testing.assert_allclose(drift.on_grid(params, r, a),
                                   reference.on_grid(reference.default_params, r, a), atol=1e-3)
    assert "$$" in (out / "formulas.md").read_text()


def test_distilled_drift_file_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "distilled", "expression": "A*(r-1)**2*c0"}))
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "c0" in err and "constants" in err


def distilled_dpo_finals(seeds: int, key_offset: int = 0, out: Path | None = None) -> dict:
    """Final returns of DPO and of its distillation (top candidate, no symbolic search)
    on CartPole at 1e5 steps, `seeds` seeds from `key(key_offset)`: {'dpo', 'distilled'}."""
    import tempfile

    from driftlab.training import resolve_settings, train_run

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(out or scratch)
        result = distill(load_source("dpo"), symbolic=False, points=41, check=False)
        path = write_distillation(result, out / "distill", top=1)
        settings = resolve_settings("gymnax/CartPole-v1", timesteps=1e5)
        kwargs = {"seeds": seeds, "seed": key_offset, "progress": False, "plot": False}
        source = train_run("gymnax/CartPole-v1", "dpo", settings, out=out / "dpo", **kwargs)
        distilled = train_run("gymnax/CartPole-v1", "distilled", settings, drift_path=str(path),
                              out=out / "distilled", **kwargs)
        return {"dpo": source.final_returns.tolist(),
                "distilled": distilled.final_returns.tolist()}


@pytest.mark.slow
@pytest.mark.learning
def test_distilled_dpo_trains_cartpole_like_dpo(tmp_path):
    """8 seeds (issue 17, tests/calibration/): over 32 other seeds DPO and its
    distillation trained to 272.5 +- 29.1 and 281.0 +- 35.5; with 4 seeds the
    |gap| <= 2 x spread check passed 98.2% of bootstrap seed sets, with 8 it passes
    99.94%, so the test takes 8 and keeps its criterion."""
    finals = distilled_dpo_finals(8, out=tmp_path)
    a, b = np.asarray(finals["dpo"]), np.asarray(finals["distilled"])
    print(f"dpo {a} vs distilled {b}")
    # Same seeds, same budget: within the seed-to-seed spread of the source.
    spread = max(np.std(a), np.std(b), 0.05 * np.mean(a))
    assert abs(np.mean(a) - np.mean(b)) <= 2 * spread
    assert np.mean(b) > 100  # it learned (random CartPole scores about 20)


def test_ppo_corrected_family_recovers_a_ppo_init_style_drift():
    """relu(D_ppo(0.2) + 0.3 A (r-1)^2 + 0.2 (r-1) - 1e-4), the form a PPO-initialised
    LPO net takes to second order: the `ppo+2 terms` family recovers eps and both
    coefficients, and wins the ranking over the rational/polynomial fits."""
    from driftlab.analysis.distill import fit_ppo_corrected

    def target(params, ratio, log_ratio, adv, progress):
        clip = jnp.clip(ratio, 0.8, 1.2)
        ppo = jnp.maximum((ratio - clip) * adv, 0.0)
        return jnp.maximum(ppo + 0.3 * adv * (ratio - 1) ** 2 + 0.2 * (ratio - 1) - 1e-4, 0.0)

    source = DriftSource("ppo-init-like", Drift("ppo-init-like", target, {}), {})
    train, heldout = sample_drift(source, points=41)
    fitted = fit_ppo_corrected(train)
    two = next(c for c in fitted if c.family == "ppo+2 terms")
    two = score_candidate(two, heldout)
    assert two.r2 > 0.999 and two.conditions.passed
    assert two.constants["eps"] == pytest.approx(0.2, rel=0.05)
    assert sorted(round(v, 2) for k, v in two.constants.items() if k != "eps") == [0.2, 0.3]
    result = distill(source, symbolic=False)
    assert result.best.family == "ppo+2 terms", result.table()


def test_one_sided_family_recovers_its_constants():
    """relu((r-1)_+ (c0 + c1 A + c2 A (r-1)) - 1e-4): the shape of the shipped
    lpo-cartpole drift; least squares recovers the three constants."""
    from driftlab.analysis.distill import fit_template, one_sided_template

    def target(params, ratio, log_ratio, adv, progress):
        up = jnp.maximum(ratio - 1.0, 0.0)
        return jnp.maximum(up * (0.4 - 0.05 * adv + 2.4 * adv * (ratio - 1.0)) - 1e-4, 0.0)

    source = DriftSource("one-sided", Drift("one-sided", target, {}), {})
    train, heldout = sample_drift(source, points=41, r_range=(0.7, 1.4), a_range=(-2.5, 2.5))
    expr, names = one_sided_template()
    fitted = score_candidate(fit_template("one-sided", expr, names, [[0.5, 0.1, 1.0]], train),
                             heldout)
    assert fitted.r2 > 0.999 and fitted.conditions.passed
    assert fitted.constants["c0"] == pytest.approx(0.4, abs=0.01)
    assert fitted.constants["c1"] == pytest.approx(-0.05, abs=0.01)
    assert fitted.constants["c2"] == pytest.approx(2.4, rel=0.02)
