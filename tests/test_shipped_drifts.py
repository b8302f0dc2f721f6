"""Shipped drifts (drifts/<name>/): layout and provenance, `driftlab drifts`,
loading by name in train / inspect / distill / discovery, and `--ship`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

from driftlab.algorithms import TrainConfig
from driftlab.algorithms.drift_io import DriftFileError, load_drift
from driftlab.algorithms.shipped import list_shipped, shipped_dir
from driftlab.analysis.surfaces import load_source
from driftlab.cli import main
from driftlab.training import resolve_settings

SHIPPED = list_shipped()
PROVENANCE_KEYS = {"meta_envs", "heldout_envs", "timesteps", "discovery", "generations",
                   "wall_clock_seconds_generations", "commit"}
TINY_DISCOVERY = ["--set", "inner.total_timesteps=1024", "--set", "inner.num_envs=4",
                  "--set", "inner.num_steps=32", "--set", "inner.update_epochs=1",
                  "--set", "inner.num_minibatches=2", "--set", "population=4",
                  "--set", "generations=1", "--set", "eval_seeds=1", "--no-progress"]


def test_the_cpu_discovery_drift_is_shipped():
    assert "lpo-cartpole" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_layout_and_provenance(name):
    folder = shipped_dir(name)
    for file in ("drift.json", "train.yaml", "provenance.yaml"):
        assert (folder / file).is_file(), file
    provenance = yaml.safe_load((folder / "provenance.yaml").read_text())
    assert PROVENANCE_KEYS <= set(provenance)
    assert isinstance(provenance["meta_envs"], list) and provenance["meta_envs"]
    assert isinstance(provenance["heldout_envs"], list)
    assert not set(provenance["meta_envs"]) & set(provenance["heldout_envs"])
    drift, params = load_drift(name)
    assert drift.spec["kind"] == provenance["kind"]
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(params))
    if provenance["kind"] == "lpo":  # a discovery: its metrics come along
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["generation"] for line in lines][-1] == provenance.get(
            "generations_run", provenance["generations"])
    # train.yaml is `driftlab train --config` input for the meta-training env
    env_id = provenance["meta_envs"][0]
    config = TrainConfig.from_dict(resolve_settings(env_id, str(folder / "train.yaml")))
    if "timesteps" in provenance and isinstance(provenance["timesteps"], dict):
        assert config.total_timesteps == provenance["timesteps"][env_id]


def test_drifts_command_lists_the_shipped_drifts(capsys):
    assert main(["drifts"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out


def test_a_shipped_name_loads_in_inspect_distill_and_discovery():
    drift, params = load_drift("lpo-cartpole")
    source = load_source("lpo-cartpole")  # what inspect and distill use
    assert source.drift.spec == drift.spec
    np.testing.assert_array_equal(source.params["w_in"], params["w_in"])
    from driftlab.discovery.config import DiscoveryConfig
    from driftlab.discovery.loop import load_initial_drift

    config = DiscoveryConfig.from_dict({
        "envs": ["gymnax/CartPole-v1"], "init_drift": "lpo-cartpole", "drift": {"ppo_init": True},
        "train": {"gymnax/CartPole-v1": {"total_timesteps": 1024, "num_envs": 4,
                                         "num_steps": 32}}})
    start = load_initial_drift(config, drift)
    np.testing.assert_array_equal(start["w_out"], params["w_out"])


def test_train_with_a_shipped_name(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--algo", "lpo", "--drift", "lpo-cartpole", "--env",
                 "gymnax/CartPole-v1", "--timesteps", "1024", "--set", "num_envs=4",
                 "--set", "num_steps=32", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "lpo"


def test_unknown_drift_name_is_one_line_naming_the_shipped(capsys):
    with pytest.raises(DriftFileError, match="lpo-cartpole"):
        load_drift("no-such-drift")
    assert main(["train", "--algo", "lpo", "--drift", "no-such-drift", "--env",
                 "gymnax/CartPole-v1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shipped drift name" in err[0]


def test_ship_a_discovery_run(tmp_path):
    run = tmp_path / "discover"
    assert main(["discover", "--preset", "cartpole-tiny", "--out", str(run),
                 *TINY_DISCOVERY]) == 0
    assert main(["drifts", "--ship", str(run), "--name", "tiny", "--dest",
                 str(tmp_path / "drifts")]) == 0
    folder = tmp_path / "drifts" / "tiny"
    provenance = yaml.safe_load((folder / "provenance.yaml").read_text())
    assert provenance["meta_envs"] == ["gymnax/CartPole-v1"]
    assert provenance["timesteps"] == {"gymnax/CartPole-v1": 1024}
    assert provenance["generations"] == 1
    a, pa = load_drift(folder)
    b, pb = load_drift(run)
    assert a.spec["kind"] == b.spec["kind"] == "lpo"
    np.testing.assert_array_equal(pa["w_in"], pb["w_in"])
    train = yaml.safe_load((folder / "train.yaml").read_text())
    assert train["total_timesteps"] == 1024 and "drift" not in train
    assert (folder / "progress.png").stat().st_size > 0 and (run / "progress.png").is_file()
    # an existing name is never overwritten; --replace replaces the whole folder
    (folder / "stale.txt").write_text("from the drift shipped before")
    ship_again = ["drifts", "--ship", str(run), "--name", "tiny", "--dest", str(tmp_path / "drifts")]
    assert main(ship_again) == 2 and (folder / "stale.txt").is_file()
    assert main([*ship_again, "--replace"]) == 0
    assert not (folder / "stale.txt").exists() and (folder / "drift.json").is_file()


@pytest.mark.parametrize("argv, message", [
    (["drifts", "--ship", "nowhere", "--name", "x"], "config.yaml"),
    (["drifts", "--ship", ".", "--name", "Bad Name"], "--name"),
])
def test_ship_bad_input_is_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_shipped_root_is_a_folder():
    from driftlab.algorithms.shipped import shipped_root

    assert isinstance(shipped_root(), Path)


def test_built_in_and_shipped_names_win_over_same_named_folders(tmp_path, monkeypatch):
    """A folder `dpo` or `lpo-cartpole` in the working directory does not replace the
    built-in or shipped drift of that name; `./dpo` names the folder."""
    from driftlab.algorithms.drift_io import load_drift
    from driftlab.analysis.surfaces import load_source
    from driftlab.evaluation import contestant

    for name in ("dpo", "lpo-cartpole"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "drift.json").write_text('{"kind": "ppo"}')
    monkeypatch.chdir(tmp_path)
    assert load_source("dpo").drift.name == "dpo"
    assert load_source("./dpo").drift.name == "ppo"
    assert load_source("lpo-cartpole").drift.name == "lpo"
    assert load_drift("lpo-cartpole")[0].name == "lpo"
    assert load_drift("./lpo-cartpole")[0].name == "ppo"
    assert contestant("lpo-cartpole", "drift").algo == "lpo"
    folder = contestant("./lpo-cartpole", "drift")
    assert folder.algo == "ppo" and load_drift(folder.drift_file)[0].name == "ppo"


def test_findings_rows_of_an_evaluate_report():
    """The quickstart's closing table reads a `driftlab evaluate` report: a row per env
    (drift and PPO IQM, normalised IQM with its CI) and the aggregate row with the
    probability of improvement."""
    from driftlab.findings import report_rows

    def row(label, env, value, norm):
        return {"label": label, "env": env, "iqm": value, "normalized_iqm": norm,
                "normalized_ci_low": norm - 0.1, "normalized_ci_high": norm + 0.1,
                "timesteps": 1000}

    data = {"algorithms": [{"name": "mine"}, {"name": "ppo"}], "seeds": 16,
            "envs": {"a/X": {}, "a/Y": {}},
            "per_env": [row("mine", "a/X", 3.0, 1.5), row("ppo", "a/X", 2.0, 1.0),
                        row("mine", "a/Y", -1.0, 0.5), row("ppo", "a/Y", 1.0, 1.0)],
            "aggregate": {"mine": {"iqm": 1.02, "ci_low": 0.9, "ci_high": 1.1}},
            "probability_of_improvement": {"algorithms": {
                "mine": {"probability": 0.55, "ci_low": 0.5, "ci_high": 0.6}}}}
    rows = report_rows("mine", data, {"a/X": "test"})
    assert rows[0] == "| mine | a/X (test) | 1,000 | 3.00 | 2.00 | 1.50 [1.40, 1.60] |"
    assert rows[1].startswith("| mine | a/Y (evaluated) | 1,000 | -1.00 | 1.00 | 0.50 [0.40, 0.60]")
    assert "**1.02 [0.90, 1.10]**" in rows[2] and "P(better than PPO) 0.55 [0.50, 0.60]" in rows[2]
    assert "all 2 envs** (16 seeds each)" in rows[2]


def test_every_committed_drift_file_loads():
    """A drift kept as a record (docs/results/, drifts/) is one `load_drift` can read:
    a JSON whose parameter file was left out is a lost record."""
    root = Path(__file__).resolve().parent.parent
    listed = subprocess.run(["git", "ls-files", "docs", "drifts"], cwd=root, capture_output=True,
                            text=True, check=True).stdout.split()
    drift_files = [root / name for name in listed if name.endswith(".json")
                   and "kind" in json.loads((root / name).read_text())]
    assert len(drift_files) >= 10, drift_files
    for path in drift_files:
        load_drift(str(path))
