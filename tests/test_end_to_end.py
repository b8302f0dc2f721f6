"""The whole loop: `driftlab quickstart` and the `--smoke` experiment recipes."""

from __future__ import annotations

import json
import math

import pytest

from driftlab.cli import main as cli_main


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
    for name in ("lpo-cartpole", "lpo-cartpole-formula"):  # the shipped drift and its formula
        assert (root / f"train-shipped-{name}" / "summary.json").is_file(), name
    rows = json.loads((root / "compare" / "comparison.json").read_text())["final"]
    labels = sorted(row["label"] for row in rows)
    # one row per algorithm; the shipped drifts labelled as such
    assert [label.split(" ")[0] for label in labels] == ["distilled", "distilled", "dpo", "lpo",
                                                          "lpo", "ppo"], labels
    assert sum("(shipped " in label for label in labels) == 2, labels
    for row in rows:
        assert math.isfinite(row["mean"]) and math.isfinite(row["iqm"]), row
    assert "quickstart finished" in out and str(root) in out and "shipped lpo-cartpole" in out
    # the shipped drift on its own meta-training env and settings, beside PPO and DPO
    home = json.loads((root / "compare-shipped" / "comparison.json").read_text())["final"]
    assert {row["env"] for row in home} == {"gymnax/CartPole-v1"}
    assert sorted(row["label"] for row in home) == [
        "distilled (shipped lpo-cartpole-formula)", "dpo", "lpo (shipped lpo-cartpole)", "ppo"]
    # A second run into the same directory is refused; --resume finds everything done.
    assert cli_main(["quickstart", "--tiny", "--out", str(root)]) == 2
    assert cli_main(["quickstart", "--resume", str(root)]) == 0
    assert capsys.readouterr().out.count("already done") == 13


@pytest.mark.slow
@pytest.mark.parametrize("recipe, envs", [("lpo-minatar", ["gymnax_SpaceInvaders-MinAtar"]),
                                          ("lpo-brax", ["brax_hopper"])])
def test_experiment_smoke(tmp_path, recipe, envs):
    root = tmp_path / recipe
    assert cli_main(["experiment", recipe, "--smoke", "--no-progress", "--out", str(root)]) == 0
    rows = json.loads((root / "compare" / "comparison.json").read_text())["final"]
    variants = sorted(p.name for p in root.glob("discover-*"))
    assert variants and all((root / v / "drift.json").is_file() for v in variants)
    # PPO, DPO and every learned variant on every evaluation env, all finite.
    assert len(rows) == len(envs) * (2 + len(variants))
    assert all(math.isfinite(row["mean"]) for row in rows)


def test_unknown_experiment_is_one_line(capsys):
    assert cli_main(["experiment", "lpo-minatr", "--smoke"]) == 2
    err = capsys.readouterr().err
    assert "did you mean lpo-minatar" in err and len(err.strip().splitlines()) == 1
