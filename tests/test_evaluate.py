"""`driftlab evaluate` and the statistics behind it (analysis/statistics.py):
known values of IQM, probability of improvement, stratified bootstrap and
performance profiles; the (R - R_random) / (R_PPO - R_random) normalisation on
a negative-return env; the report written from run directories; a tiny real
evaluation (slow) and its resume; the shipped suites."""

from __future__ import annotations

import json
import math

import jax
import matplotlib.image as mpimg
import numpy as np
import pytest
import yaml

from driftlab.analysis.statistics import (
    aggregate_iqm,
    iqm,
    normalize,
    performance_profile,
    probability_of_improvement,
    probability_of_improvement_ci,
    stratified_resample,
)
from driftlab.cli import main

ACROBOT, PENDULUM = "gymnax/Acrobot-v1", "gymnax/Pendulum-v1"


# ---- statistics against hand-computed values ------------------------------------------

def test_iqm_trims_a_quarter_each_side():
    assert iqm(np.array([0.0, 1, 2, 3, 4, 5, 6, 100])) == pytest.approx(3.5)  # mean of 2..5
    # n = 10: int(2.5) = 2 cut each side, as scipy.stats.trim_mean(x, 0.25)
    assert iqm(np.arange(10.0)) == pytest.approx(np.mean(np.arange(2, 8)))
    assert iqm(np.array([7.0])) == 7.0


def test_probability_of_improvement_known_values():
    # pairs of [1, 2, 3] vs [0, 2, 4]: wins 1 + 1.5 + 2 = 4.5 of 9
    assert probability_of_improvement([np.array([1.0, 2, 3])], [np.array([0.0, 2, 4])]) == 0.5
    # [2, 3] vs [1, 2]: 1 + 0.5 + 1 + 1 = 3.5 of 4; averaged with a certain loss (0) on env 2
    x, y = [np.array([2.0, 3]), np.array([0.0])], [np.array([1.0, 2]), np.array([5.0])]
    assert probability_of_improvement(x, y) == pytest.approx((3.5 / 4 + 0.0) / 2)
    assert probability_of_improvement([np.arange(4.0)], [np.arange(4.0)]) == 0.5
    # a diverged (NaN) run is left out: the same as without it
    assert probability_of_improvement([np.array([1.0, 2, 3, np.nan])],
                                      [np.array([0.0, 2, 4])]) == 0.5
    estimate = probability_of_improvement_ci([np.array([5.0, 6, 7])], [np.array([1.0, 2, 3])],
                                             resamples=200)
    assert (estimate.value, estimate.ci_low, estimate.ci_high) == (1.0, 1.0, 1.0)
    estimate = probability_of_improvement_ci(x, y, resamples=500)
    assert estimate.ci_low <= estimate.value <= estimate.ci_high


def test_stratified_bootstrap_resamples_within_each_env():
    envs = [np.array([1.0, 2, 3]), np.array([100.0, 200])]
    samples = stratified_resample(envs, 300, np.random.default_rng(0))
    assert samples.shape == (300, 5)
    assert set(np.unique(samples[:, :3])) <= {1.0, 2.0, 3.0}
    assert set(np.unique(samples[:, 3:])) <= {100.0, 200.0}
    # the same value everywhere: a point interval; IQM over env x seed pooled
    flat = aggregate_iqm([np.full(4, 2.0), np.full(4, 2.0)], resamples=100)
    assert (flat.value, flat.ci_low, flat.ci_high) == (2.0, 2.0, 2.0)
    pooled = aggregate_iqm([np.array([0.0, 1, 2, 3]), np.array([4.0, 5, 6, 100])], resamples=500)
    assert pooled.value == pytest.approx(3.5) and pooled.ci_low <= 3.5 <= pooled.ci_high
    assert math.isnan(aggregate_iqm([np.array([1.0]), np.array([np.nan])]).value)


def test_performance_profile_known_values():
    scores = [np.array([0.0, 0.5, 1.0, 1.5]), np.array([2.0, 3.0])]
    taus = np.array([-1.0, 0.0, 0.75, 1.5, 5.0])
    profile, low, high = performance_profile(scores, taus, resamples=300)
    # fraction of the 6 runs strictly above each tau
    assert profile == pytest.approx([1.0, 5 / 6, 4 / 6, 2 / 6, 0.0])
    assert np.all(low <= profile + 1e-12) and np.all(profile <= high + 1e-12)
    assert low[0] == high[0] == 1.0 and low[-1] == high[-1] == 0.0
    # env 2 is always above 1.5 and env 1 never: the band at tau = 1.5 is a point
    assert low[3] == high[3] == pytest.approx(2 / 6)


def test_normalisation_on_a_negative_return_env():
    """Acrobot's random policy (measured: about -498) scores 0 and PPO's mean 1;
    a better (less negative) return scores above 1."""
    from driftlab import envs
    from driftlab.algorithms.evaluation import random_policy_return

    random = random_policy_return(envs.make(ACROBOT), jax.random.key(0), 64)
    assert -500 <= random < -480
    ppo = np.array([-190.0, -170.0])  # PPO's final returns; mean -180
    scores = normalize(np.array([random, -180.0, -100.0, -500.0]), random, ppo.mean())
    assert scores[0] == pytest.approx(0.0) and scores[1] == pytest.approx(1.0)
    assert scores[2] > 1 and scores[3] <= 0  # -500: never swung up (random may be -500 too)
    assert normalize(ppo, random, ppo.mean()).mean() == pytest.approx(1.0)


# ---- the report, from run directories (no training) -------------------------------------

def _fake_run(path, env, algo, finals, updates=20):
    """A train run directory whose returns ramp up to `finals` by half-way, then stay."""
    path.mkdir(parents=True)
    with open(path / "metrics.jsonl", "w") as handle:
        for i in range(updates):
            per_seed = [f * min(1.0, (i + 1) / (updates // 2)) for f in finals]
            handle.write(json.dumps({"update": i + 1, "timesteps": (i + 1) * 512,
                                     "episode_return_per_seed": per_seed}) + "\n")
    (path / "summary.json").write_text(json.dumps({"env": env, "algo": algo,
                                                   "final_return_per_seed": finals}))
    (path / "config.yaml").write_text(yaml.safe_dump({"command": "train", "env": env,
                                                      "algo": algo, "seeds": len(finals)}))


def test_report_from_run_directories(tmp_path):
    from driftlab.evaluation import Contestant, write_report

    who = [Contestant("dpo", "dpo"), Contestant("ppo", "ppo")]
    randoms = {ACROBOT: -500.0, PENDULUM: -1200.0}
    finals = {("ppo", ACROBOT): [-200.0, -180, -160, -140], ("dpo", ACROBOT): [-100.0] * 4,
              ("ppo", PENDULUM): [-400.0, -350, -300, -250], ("dpo", PENDULUM): [-1200.0] * 4}
    run_dirs = {}
    for (name, env), values in finals.items():
        run_dirs[(name, env)] = tmp_path / "runs" / name / env.replace("/", "_")
        _fake_run(run_dirs[(name, env)], env, name, values)
    report = write_report(tmp_path, who, {ACROBOT: 1000, PENDULUM: 2000}, run_dirs, randoms,
                          4, 200, 0, None, "dpo")
    # PPO: random 0, its own mean 1; DPO: Acrobot (-100+500)/(-170+500), Pendulum 0
    assert report.aggregate["ppo"]["iqm"] == pytest.approx(1.0, abs=0.2)
    dpo_rows = {r["env"]: r for r in report.data["per_env"] if r["label"] == "dpo"}
    assert dpo_rows[ACROBOT]["normalized_iqm"] == pytest.approx(400 / 330)
    assert dpo_rows[PENDULUM]["normalized_iqm"] == pytest.approx(0.0)
    assert report.improvement["dpo"]["probability"] == pytest.approx(0.5)  # wins one env, loses one
    assert "ppo" not in report.improvement
    for name in ("report.md", "report.json", "performance_profile.png",
                 "learning_curves_gymnax_Acrobot-v1.png", "learning_curves_gymnax_Pendulum-v1.png"):
        assert (tmp_path / name).is_file(), name
    image = mpimg.imread(tmp_path / "performance_profile.png")
    assert image.shape[:2] == (450, 750) and float(np.std(image[..., :3])) > 0.05
    text = (tmp_path / "report.md").read_text()
    assert "P(algorithm > PPO)" in text and "0.500" in text
    assert json.loads((tmp_path / "report.json").read_text())["reference"] == "ppo"


def test_compare_reports_improvement_and_random_normalisation(tmp_path, capsys):
    runs = []
    for env, finals in ((ACROBOT, {"ppo": [-200.0, -180, -160, -140], "dpo": [-100.0] * 4}),):
        for algo, values in finals.items():
            path = tmp_path / algo
            _fake_run(path, env, algo, values)
            runs.append(str(path))
    randoms = tmp_path / "random.json"
    randoms.write_text(json.dumps({ACROBOT: -500.0}))
    out = tmp_path / "cmp"
    assert main(["compare", *runs, "--out", str(out), "--bootstrap", "100",
                 "--random-returns", str(randoms)]) == 0
    data = json.loads((out / "comparison.json").read_text())
    assert data["normalization"]["scheme"] == "random"
    assert data["normalized"]["dpo"]["iqm"] == pytest.approx(400 / 330)  # the old keys stay
    assert data["probability_of_improvement"]["algorithms"]["dpo"]["probability"] == 1.0
    assert (out / "performance_profile.png").is_file()
    assert "P(algorithm > ppo)" in capsys.readouterr().out
    # off: the earlier 1 + (R - R_ref) / |R_ref|
    assert main(["compare", *runs, "--out", str(tmp_path / "off"), "--bootstrap", "100",
                 "--random-returns", "off"]) == 0
    data = json.loads((tmp_path / "off" / "comparison.json").read_text())
    assert data["normalization"]["scheme"] == "reference"
    assert data["normalized"]["dpo"]["iqm"] == pytest.approx(1 + 70 / 170)


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_resume_of_another_request_and_missing_random_returns_are_one_line(tmp_path, capsys):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "evaluation.yaml").write_text(yaml.safe_dump({"command": "evaluate", "drift": "ppo"}))
    argv = ["evaluate", "dpo", "--envs", ACROBOT, "--out", str(out), "--no-progress"]
    err = _one_line_error(capsys, [*argv, "--resume"])
    assert "holds an evaluation with another drift (saved 'ppo', now 'dpo')" in err
    assert "is not empty; choose a new --out (or --resume it)" in _one_line_error(capsys, argv)
    randoms = tmp_path / "random.yaml"
    randoms.write_text(f"{PENDULUM}: -1200\n")
    err = _one_line_error(capsys, ["evaluate", "dpo", "--envs", ACROBOT, "--out",
                                   str(tmp_path / "new"), "--random-returns", str(randoms)])
    assert f"random-policy returns given for {PENDULUM} but not for {ACROBOT}" in err
    assert not (tmp_path / "new").exists()


# ---- suites ---------------------------------------------------------------------------

def test_shipped_suites_name_known_envs_and_budgets():
    from driftlab.envs import list_envs
    from driftlab.evaluation import list_suites, load_suite

    assert {"classic", "minatar"} <= set(list_suites())
    classic, minatar = load_suite("classic"), load_suite("minatar")
    assert {ACROBOT, PENDULUM, "gymnax/CartPole-v1", "gymnax/Catch-bsuite"} <= set(classic)
    assert set(minatar) == {f"gymnax/{g}-MinAtar" for g in
                            ("Breakout", "SpaceInvaders", "Asterix", "Freeway")}
    assert all(env in list_envs() and steps >= 10_000 for env, steps in
               {**classic, **minatar}.items())


# ---- a real evaluation, tiny ------------------------------------------------------------

@pytest.mark.slow
def test_evaluate_two_envs_writes_every_artefact_and_resumes(tmp_path, capsys, monkeypatch):
    """Acrobot (negative returns) and Pendulum (continuous), 2 seeds, 4,096 steps: at
    that budget PPO is no better than random, so the random-policy returns come
    from a file here (measuring them, and refusing such an env, is tested below)."""
    from driftlab.evaluation import evaluate

    randoms = tmp_path / "random.json"
    randoms.write_text(json.dumps({ACROBOT: -1000.0, PENDULUM: -5000.0}))
    out = tmp_path / "eval"
    report = evaluate("dpo", envs=[ACROBOT, PENDULUM], seeds=2, baselines=("ppo",), out=out,
                      timesteps=4096, bootstrap=50, random_returns=randoms, progress=False)
    for name in ("report.md", "report.json", "evaluation.yaml", "performance_profile.png",
                 "learning_curves_gymnax_Acrobot-v1.png", "learning_curves_gymnax_Pendulum-v1.png"):
        assert (out / name).is_file(), name
    assert set(report.aggregate) == {"dpo", "ppo"} and set(report.improvement) == {"dpo"}
    assert all(math.isfinite(report.aggregate[n]["iqm"]) for n in ("dpo", "ppo"))
    assert report.data["envs"][ACROBOT]["random_return"] == -1000.0
    # every run directory is an ordinary train run: compare reads them
    runs = sorted(str(p) for p in (out / "runs").glob("*/*"))
    assert len(runs) == 4
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp"), "--bootstrap", "20",
                 "--random-returns", str(randoms)]) == 0
    # resume: nothing is trained again (training would fail here)
    capsys.readouterr()
    import driftlab.training

    def no_training(*args, **kwargs):
        raise AssertionError("a complete run was trained again")

    monkeypatch.setattr(driftlab.training, "train_run", no_training)
    assert main(["evaluate", "dpo", "--envs", ACROBOT, PENDULUM, "--seeds", "2",
                 "--baselines", "ppo", "--out", str(out), "--resume", "--timesteps", "4096",
                 "--bootstrap", "50", "--random-returns", str(randoms), "--no-progress"]) == 0
    assert capsys.readouterr().out.count("done before, kept") == 4


@pytest.mark.slow
def test_evaluate_refuses_an_env_ppo_does_not_beat_random(tmp_path, capsys):
    """Random returns measured: on MountainCar-v0 neither a random policy nor PPO at
    2,048 steps reaches the goal (-200 both), so the env cannot be normalised."""
    car = "gymnax/MountainCar-v0"
    code = main(["evaluate", "dpo", "--envs", car, "--seeds", "2", "--baselines", "ppo",
                 "--timesteps", "2048", "--out", str(tmp_path / "eval"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is not above the random policy's (-200)" in err
    assert json.loads((tmp_path / "eval" / "random_returns.json").read_text())[car] == -200.0
    assert not (tmp_path / "eval" / "runs" / "dpo").exists()  # stopped before the others


@pytest.mark.slow
def test_cells_in_two_processes_and_baselines_copied_from_another_evaluation(tmp_path, capsys,
                                                                             monkeypatch):
    """--jobs 2 trains the cells in two processes; a second evaluation copies PPO's cell
    from the first (--baselines-from) and trains only its drift, in this process, to
    the same final returns; a cell trained otherwise (another base seed) is refused."""
    randoms = tmp_path / "random.json"
    randoms.write_text(json.dumps({ACROBOT: -1000.0}))
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--envs", ACROBOT, "--seeds", "2", "--baselines", "ppo", "--timesteps", "4096",
              "--bootstrap", "20", "--random-returns", str(randoms), "--no-progress"]
    assert main(["evaluate", "dpo", *common, "--out", str(first), "--jobs", "2"]) == 0
    assert "2 cells in 2 processes" in capsys.readouterr().out
    import driftlab.training

    trained = []
    original = driftlab.training.train_run
    monkeypatch.setattr(driftlab.training, "train_run",
                        lambda env_id, algo, *a, **k: trained.append(algo) or
                        original(env_id, algo, *a, **k))
    assert main(["evaluate", "dpo", *common, "--out", str(second),
                 "--baselines-from", str(first)]) == 0
    assert trained == ["dpo"]  # PPO was copied, the evaluated drift never is
    out = capsys.readouterr().out
    assert "ppo on gymnax/Acrobot-v1: 4,096 steps x 2 seeds: copied from" in out
    assert "Copied from" in out  # report.md says so
    cell = "runs/{}/gymnax_Acrobot-v1/summary.json"
    for name in ("ppo", "dpo"):  # the child process and this one trained alike
        a = json.loads((first / cell.format(name)).read_text())["final_return_per_seed"]
        b = json.loads((second / cell.format(name)).read_text())["final_return_per_seed"]
        assert a == b, name
    reused = json.loads((second / "reused_cells.json").read_text())["cells"]
    assert [(c["algorithm"], c["env"]) for c in reused] == [("ppo", ACROBOT)]
    assert json.loads((second / "report.json").read_text())["reused_cells"] == reused
    # another base seed: PPO's cell in `first` is not this evaluation's; refused in one line
    code = main(["evaluate", "dpo", *common, "--out", str(tmp_path / "third"), "--seed", "1",
                 "--baselines-from", str(first)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "its seed is 0, this evaluation's 1" in err
    assert main(["evaluate", "dpo", *common, "--out", str(tmp_path / "fourth"),
                 "--baselines-from", str(tmp_path)]) == 2
    assert "not an evaluate report folder" in capsys.readouterr().err
    # A cell written before config.yaml recorded the chunk length and the normaliser's
    # update rule was trained with the values of then (20, "step"): still alike. Any
    # other difference in a recorded setting is not.
    from driftlab.errors import DriftlabError
    from driftlab.evaluation import Contestant, settings_for
    from driftlab.evaluation_cells import Cell, plan_reuse

    ppo = Cell(ACROBOT, "ppo", "ppo", None, 4096,
               settings_for(ACROBOT, Contestant("ppo", "ppo"), 4096), None)
    config_path = first / "runs/ppo/gymnax_Acrobot-v1/config.yaml"
    saved = yaml.safe_load(config_path.read_text())
    old = {**saved, "train": dict(saved["train"])}
    del old["chunks"], old["train"]["obs_norm_update"]
    config_path.write_text(yaml.safe_dump(old))
    assert [c.name for c, _ in plan_reuse([ppo], first, 2, 0)] == ["ppo"]
    changed = {**saved["train"], "hyperparams": {**saved["train"]["hyperparams"], "gamma": 0.9}}
    config_path.write_text(yaml.safe_dump({**saved, "train": changed}))
    with pytest.raises(DriftlabError, match="its training setting hyperparams.gamma is 0.9, "
                                            "this evaluation's 0.99"):
        plan_reuse([ppo], first, 2, 0)
    # Trained by other code (another source digest) or other libraries: refused in one
    # line naming it, unless the caller pools across software; the report then lists it.
    config_path.write_text(yaml.safe_dump(saved))
    assert [c.name for c, _ in plan_reuse([ppo], first, 2, 0)] == ["ppo"]
    for key, value, said in [("source", "0123456789abcdef", "other driftlab code"),
                             ("packages", {**saved["software"]["packages"], "jax": "0.4.0"},
                              "trained with jax 0.4.0")]:
        config_path.write_text(yaml.safe_dump({**saved,
                                               "software": {**saved["software"], key: value}}))
        with pytest.raises(DriftlabError, match=said) as refused:
            plan_reuse([ppo], first, 2, 0)
        assert "--reuse-across-software" in str(refused.value)
        assert "\n" not in str(refused.value)
        assert [c.name for c, _ in plan_reuse([ppo], first, 2, 0, True)] == ["ppo"]
    code = main(["evaluate", "dpo", *common, "--out", str(tmp_path / "fifth"),
                 "--baselines-from", str(first)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "trained with jax 0.4.0" in err and "\n" not in err
    assert main(["evaluate", "dpo", *common, "--out", str(tmp_path / "fifth"),
                 "--baselines-from", str(first), "--reuse-across-software"]) == 0
    pooled = json.loads((tmp_path / "fifth" / "report.json").read_text())["other_software_cells"]
    assert [(c["algorithm"], c["env"]) for c in pooled] == [("ppo", ACROBOT)]
    assert "jax 0.4.0" in pooled[0]["why"]
    assert "Pooled across software" in (tmp_path / "fifth" / "report.md").read_text()
    # A resumed evaluation keeps its finished cells only when this code trained them.
    # (the copied PPO cell, jax 0.4.0, is refused first)
    code = main(["evaluate", "dpo", *common, "--out", str(tmp_path / "fifth"), "--resume"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "trained before this resume, but it was trained with jax 0.4.0" in err
    assert "\n" not in err
