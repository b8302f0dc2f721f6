"""The whole loop: `driftlab quickstart` and the `--smoke` experiment recipes."""

from __future__ import annotations

import json
import math

import pytest

from driftlab.cli import main as cli_main
from driftlab.discovery_settings import build_config
from driftlab.envs.registry import check_env_options
from driftlab.experiment_command import load_recipe
from driftlab.presets import CONFIG_DIR, expand_dotted
from driftlab.train_checks import check_settings
from driftlab.training import resolve_settings


@pytest.mark.slow
def test_quickstart_tiny_end_to_end(tmp_path, capsys):
    root = tmp_path / "qs"
    assert cli_main(["quickstart", "--tiny", "--out", str(root)]) == 0
    out = capsys.readouterr().out
    for artefact in ["discover/drift.json", "discover/drift.params.msgpack", "discover/progress.png",
                     "discover/metrics.jsonl", "inspect/heatmaps.png", "inspect/slices.png",
                     "inspect/panel.png", "inspect/conditions.json", "distill/drift.json",
                     "distill/formulas.md", "compare/comparison.json", "compare/comparison.md"]:
        assert (root / artefact).is_file(), artefact
    for algo in ("ppo", "dpo", "lpo", "distilled"):
        assert (root / f"train-{algo}" / "summary.json").is_file(), algo
    rows = json.loads((root / "compare" / "comparison.json").read_text())["final"]
    assert sorted(row["label"].split(" ")[0] for row in rows) == ["distilled", "dpo", "lpo",
                                                                   "ppo"], rows
    for row in rows:
        assert math.isfinite(row["mean"]) and math.isfinite(row["iqm"]), row
    assert "quickstart finished" in out and str(root) in out
    # PPO, DPO, the inspection and the learned drift's run went to the child process,
    # with the numbers an in-process call gives; the discovery skipped its fresh-seed
    # evaluation (eval_every 0).
    for job in ("ppo", "dpo", "inspect", "lpo"):
        assert f"{job} (trained in the background)" in out or job == "inspect", job
        assert (root / (f"train-{job}.log" if job != "inspect" else "inspect.log")).is_file()
    from driftlab import api
    again = api.train("ppo", "gymnax/Acrobot-v1", seeds=2, timesteps=20000, progress=False,
                      out=tmp_path / "again")
    child = json.loads((root / "train-ppo" / "summary.json").read_text())
    assert child["final_return_per_seed"] == [float(x) for x in again.final_returns]
    # compare's random-policy returns were measured in the child, as compare measures them
    from driftlab.analysis.compare import load_runs, random_returns_of
    measured = random_returns_of(load_runs([str(root / "train-ppo")]))
    assert json.loads((root / "random_returns.json").read_text()) == measured
    assert "random_returns.json" in json.dumps(
        json.loads((root / "compare" / "comparison.json").read_text()))
    assert not any("eval" in json.loads(line)
                   for line in (root / "discover" / "metrics.jsonl").read_text().splitlines())
    # The closing leads with the shipped drifts' measured results, read from their folders.
    found = out.index("What driftlab has found")
    assert found < out.index("This quickstart's runs on") < out.index("quickstart finished")
    assert "| lpo-cartpole | gymnax/CartPole-v1 (meta-training) | 32,768 |" in out
    # A second run into the same directory is refused; --resume finds everything done.
    assert cli_main(["quickstart", "--tiny", "--out", str(root)]) == 2
    assert cli_main(["quickstart", "--resume", str(root)]) == 0
    assert capsys.readouterr().out.count("already done") == 7


@pytest.mark.slow
def test_experiment_smoke(tmp_path):
    """The whole experiment pipeline once (two discoveries, baselines, compare): the
    other recipes run the same code and are checked below without training."""
    recipe, envs = "lpo-minatar", ["gymnax_SpaceInvaders-MinAtar"]
    root = tmp_path / recipe
    assert cli_main(["experiment", recipe, "--smoke", "--no-progress", "--out", str(root)]) == 0
    rows = json.loads((root / "compare" / "comparison.json").read_text())["final"]
    variants = sorted(p.name for p in root.glob("discover-*"))
    assert variants and all((root / v / "drift.json").is_file() for v in variants)
    # PPO, DPO and every learned variant on every evaluation env, all finite.
    assert len(rows) == len(envs) * (2 + len(variants))
    assert all(math.isfinite(row["mean"]) for row in rows)


RECIPES = sorted(p.stem for p in (CONFIG_DIR / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("smoke", [False, True], ids=["full", "smoke"])
@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_resolves_to_valid_settings(name, smoke):
    """Each variant's discovery settings and each evaluation run's training settings
    validate, at full scale and with --smoke's overrides (no env is built: a Brax env
    takes seconds to load)."""
    recipe = load_recipe(name)
    overrides = recipe.get("smoke", {}) if smoke else {}
    evaluate = recipe["evaluate"]
    for spec in recipe["variants"].values():
        build_config(spec["preset"], None, expand_dotted(
            {**spec.get("set", {}), **overrides.get("discover", {})}))
    for env_id in overrides.get("envs", evaluate["envs"]):
        for algo in evaluate["algos"]:
            settings = resolve_settings(env_id, None, expand_dotted(overrides.get("train", {})),
                                        overrides.get("timesteps"), algo=algo)
            check_settings(algo, settings, None)
            check_env_options(env_id, settings.get("env_options") or {})


def test_unknown_experiment_is_one_line(capsys):
    assert cli_main(["experiment", "lpo-minatr", "--smoke"]) == 2
    err = capsys.readouterr().err
    assert "did you mean lpo-minatar" in err and len(err.strip().splitlines()) == 1
