"""Surfaces, plots, condition checks, comparison statistics, bad inputs (issue 4)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import matplotlib.image as mpimg
import numpy as np
import pytest

from driftlab.algorithms import Drift, make_drift
from driftlab.analysis import plots
from driftlab.analysis.compare import bootstrap_ci, iqm, load_runs, normalized_scores
from driftlab.analysis.conditions import check_conditions
from driftlab.analysis.surfaces import AnalysisError, DriftSource, evaluate, load_source, make_grid
from driftlab.cli import main


def random_lpo(temporal: bool = False, seed: int = 0) -> DriftSource:
    drift = make_drift("lpo", temporal=temporal)
    k1, k2 = jax.random.split(jax.random.key(seed))
    params = {"w_in": 0.5 * jax.random.normal(k1, drift.default_params["w_in"].shape),
              "w_out": 0.1 * jax.random.normal(k2, drift.default_params["w_out"].shape)}
    return DriftSource("random LPO", drift, params)


def custom(name: str, fn) -> DriftSource:
    return DriftSource(name, Drift(name, fn, {}), {})


# ---- surfaces ---------------------------------------------------------------------

def test_ppo_derivative_zero_inside_clip_and_a_outside():
    grid = make_grid(0.3, 2.0, 171, -5.0, 5.0, 41)
    surface = evaluate(load_source("ppo"), grid)
    r = grid.ratio[None, :]
    a = grid.advantage[:, None]
    d_obj = surface.d_objective[0]
    inside = (r > 0.8 + 1e-3) & (r < 1.2 - 1e-3)
    # d(rA - D)/dr = A where the clip is inactive: inside the range, and outside
    # it on the side the clip does not bind (r < 1-eps with A > 0, r > 1+eps with A < 0).
    unclipped = inside | ((r < 0.8 - 1e-3) & (a > 0)) | ((r > 1.2 + 1e-3) & (a < 0))
    clipped = ((r > 1.2 + 1e-3) & (a > 0)) | ((r < 0.8 - 1e-3) & (a < 0))
    np.testing.assert_allclose(surface.d_drift[0][np.broadcast_to(inside, d_obj.shape)], 0.0,
                               atol=1e-6)
    np.testing.assert_allclose(d_obj[np.broadcast_to(unclipped, d_obj.shape)],
                               np.broadcast_to(a, d_obj.shape)[np.broadcast_to(unclipped,
                                                                            d_obj.shape)],
                               atol=1e-5)
    np.testing.assert_allclose(d_obj[np.broadcast_to(clipped, d_obj.shape)], 0.0, atol=1e-5)
    np.testing.assert_allclose(surface.objective[0], r * a - surface.drift[0], atol=1e-6)


def test_surface_derivative_is_the_analytic_one_for_dpo():
    grid = make_grid(0.5, 1.8, 27, -3.0, 3.0, 13)
    surface = evaluate(load_source("dpo"), grid)
    r, a = grid.ratio[None, :], grid.advantage[:, None]
    u = np.where(a >= 0, (r - 1) * a, np.log(r) * a)
    c = np.where(a >= 0, 2.0, 0.6)
    du_dr = np.where(a >= 0, a, a / r)
    expected = np.where(u - c * np.tanh(u / c) > 0, (1 - 1 / np.cosh(u / c) ** 2) * du_dr, 0.0)
    np.testing.assert_allclose(surface.d_drift[0], expected, atol=2e-4)


# ---- plots ------------------------------------------------------------------------

def _check_png(path, columns, rows):
    image = mpimg.imread(path)
    width, height = plots.figure_size(columns, rows)
    assert image.shape[:2] == (height, width)
    assert float(np.std(image[..., :3])) > 0.05  # not blank


def test_plots_for_ppo_dpo_and_random_lpo(tmp_path):
    grid = make_grid(n_r=81, n_a=81)
    sources = [load_source("ppo"), load_source("dpo"), random_lpo()]
    surfaces = [evaluate(s, grid) for s in sources]
    for surface in surfaces:
        path = plots.plot_heatmaps(surface, tmp_path / f"heat_{surface.label}.png")
        _check_png(path, 2, 1)
    _check_png(plots.plot_slices(surfaces, tmp_path / "slices.png"), 3, 1)
    _check_png(plots.plot_panel(surfaces, tmp_path / "panel.png"), 3, 2)
    temporal = evaluate(random_lpo(temporal=True), make_grid(n_r=41, n_a=41,
                                                             progress=(0.0, 0.5, 1.0)))
    _check_png(plots.plot_progress(temporal, tmp_path / "progress.png"), 3, 1)


def test_inspect_cli_writes_plots_and_report(tmp_path, capsys):
    out = tmp_path / "inspect"
    assert main(["inspect", "dpo", "--compare", "ppo", "--points", "41", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "all pass" in text and "D(1, A) = 0" in text
    for name in ("heatmaps.png", "slices.png", "panel.png", "conditions.json", "config.yaml"):
        assert (out / name).is_file(), name
    assert json.loads((out / "conditions.json").read_text())["passed"] is True


# ---- conditions -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ppo", "dpo", "lpo", "ta-lpo"])
def test_conditions_pass_for_valid_drifts(name):
    report = check_conditions(load_source(name), points=201)
    assert report.passed, report.text()


def test_conditions_pass_for_random_lpo_network():
    # relu(f - 1e-4) is exactly flat near r = 1 whatever the weights.
    assert check_conditions(random_lpo(), points=101).passed


@pytest.mark.parametrize("name, fn, violated", [
    ("negative", lambda p, r, lr, a, q: -(r - 1) ** 2 * jnp.abs(a), "non-negative"),
    ("offset", lambda p, r, lr, a, q: (r - 1) ** 2 + 0.1, "zero at r=1"),
    ("kink", lambda p, r, lr, a, q: 0.5 * jnp.abs(r - 1), "zero slope at r=1"),
])
def test_conditions_fail_naming_the_violation(name, fn, violated):
    report = check_conditions(custom(name, fn), points=101)
    assert not report.passed
    assert violated in report.violated
    assert f"VIOLATED: {violated}" in report.text() or violated in report.text()
    worst = next(r for r in report.results if r.name == violated).worst
    if violated != "non-negative":
        assert abs(worst["r"] - 1.0) < 1e-3  # the worst point is at r = 1


def test_kink_is_the_only_violation():
    report = check_conditions(custom("kink", lambda p, r, lr, a, q: 0.5 * jnp.abs(r - 1)),
                              points=101)
    assert report.violated == ["zero slope at r=1"]


# ---- comparison statistics ----------------------------------------------------------

def test_iqm_and_bootstrap():
    values = np.array([0.0, 1, 2, 3, 4, 5, 6, 100])
    assert iqm(values) == pytest.approx(3.5)  # mean of 2, 3, 4, 5
    low, high = bootstrap_ci(np.arange(20.0), resamples=500)
    assert low < 9.5 < high and high - low < 10
    assert bootstrap_ci(np.full(5, 3.0), resamples=100) == (3.0, 3.0)


def _fake_run(path, env, algo, finals, updates=20):
    path.mkdir(parents=True)
    with open(path / "metrics.jsonl", "w") as handle:
        for i in range(updates):
            per_seed = [f * (i + 1) / updates for f in finals]
            handle.write(json.dumps({"update": i + 1, "timesteps": (i + 1) * 512,
                                     "episode_return": float(np.mean(per_seed)),
                                     "episode_return_per_seed": per_seed}) + "\n")
        handle.write('{"update": 99, "timest')  # torn last line of a crashed run
    (path / "summary.json").write_text(json.dumps({"env": env, "algo": algo}))
    (path / "config.yaml").write_text(f"env: {env}\nalgo: {algo}\n")


def test_compare_cli(tmp_path, capsys):
    runs = []
    for env, scale in (("gymnax/CartPole-v1", 500.0), ("gymnax/Acrobot-v1", -100.0)):
        for algo, factor in (("ppo", 1.0), ("dpo", 1.2)):
            path = tmp_path / f"{algo}-{env.split('/')[1]}"
            _fake_run(path, env, algo, [scale * factor * (1 + 0.01 * s) for s in range(4)])
            runs.append(str(path))
    groups = load_runs(runs)
    assert {g.label for g in groups} == {"ppo", "dpo"} and all(g.returns.shape == (4, 20)
                                                               for g in groups)
    scores = normalized_scores(groups, "ppo", resamples=200)
    assert scores["ppo"]["iqm"] == pytest.approx(1.0, abs=0.03)
    out = tmp_path / "cmp"
    assert main(["compare", *runs, "--out", str(out), "--bootstrap", "200"]) == 0
    text = capsys.readouterr().out
    assert "IQM" in text and "normalised IQM" in text
    for name in ("comparison.md", "comparison.json",
                 "learning_curves_gymnax_CartPole-v1.png", "learning_curves_gymnax_Acrobot-v1.png"):
        assert (out / name).is_file(), name
    image = mpimg.imread(out / "learning_curves_gymnax_CartPole-v1.png")
    assert image.shape[:2] == (450, 750) and float(np.std(image[..., :3])) > 0.05


# ---- bad input ------------------------------------------------------------------------

def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    err = _one_line_error(capsys, ["inspect", str(tmp_path / "nowhere")])
    assert "neither a run directory" in err and "pass one of those" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _one_line_error(capsys, ["distill", str(empty)])
    assert "not a run directory" in err
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "not a drift file" in _one_line_error(capsys, ["inspect", str(text)])
    unknown = tmp_path / "weird.json"
    unknown.write_text(json.dumps({"kind": "quantum", "params": {}}))
    err = _one_line_error(capsys, ["inspect", str(unknown)])
    assert "unknown drift/algorithm 'quantum'" in err and "choose one of" in err
    err = _one_line_error(capsys, ["inspect", "ppo", "--points", "0"])
    assert "empty grid" in err and "--points" in err
    err = _one_line_error(capsys, ["inspect", "ppo", "--r-min", "2", "--r-max", "1"])
    assert "empty grid" in err
    assert "empty grid" in _one_line_error(capsys, ["distill", "ppo", "--points", "1"])
    err = _one_line_error(capsys, ["compare", str(empty)])
    assert "not a train run directory" in err
    with pytest.raises(AnalysisError, match="empty grid"):
        make_grid(n_r=0)
