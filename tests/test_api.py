"""The Python API (driftlab.api): every verb called with Python values at tiny
budgets; the CLI is a thin layer over it (same run directories, bitwise), and the
chained commands (quickstart, experiment) surface a failing stage's own error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from driftlab import api
from driftlab.cli import main
from driftlab.errors import DriftlabError
from driftlab.rundir import held_locks

CARTPOLE = "gymnax/CartPole-v1"
TINY_TRAIN = {"total_timesteps": 512, "num_envs": 4, "num_steps": 32}
TINY_DISCOVERY = {"population": 4, "generations": 1, "eval_seeds": 1, "eval_every": 10,
                  "init_drift": None, "inner.total_timesteps": 1024, "inner.num_envs": 4,
                  "inner.num_steps": 32, "inner.update_epochs": 2, "inner.num_minibatches": 2,
                  "inner.actor_hidden": [16], "inner.critic_hidden": [16]}


def test_train_is_the_cli_run_bitwise_and_lets_go_of_its_lock(tmp_path: Path):
    outcome = api.train("dpo", CARTPOLE, seeds=2, seed=3, settings=TINY_TRAIN,
                        out=tmp_path / "api", progress=False)
    assert outcome.run_dir == tmp_path / "api" and outcome.final_returns.shape == (2,)
    assert outcome.returns.shape == (2, len(outcome.timesteps))
    assert outcome.run_dir.resolve() not in held_locks()  # released when train returned
    assert main(["train", "--algo", "dpo", "--env", CARTPOLE, "--seeds", "2", "--seed", "3",
                 "--set", "total_timesteps=512", "--set", "num_envs=4", "--set", "num_steps=32",
                 "--no-progress", "--out", str(tmp_path / "cli")]) == 0
    for name in ("params.msgpack", "drift.params.msgpack", "config.yaml"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    cli = json.loads((tmp_path / "cli" / "summary.json").read_text())
    np.testing.assert_array_equal(outcome.final_returns, cli["final_return_per_seed"])


def test_bad_values_raise_before_anything_is_written(tmp_path: Path):
    with pytest.raises(DriftlabError, match="--seeds must be >= 1"):
        api.train("ppo", CARTPOLE, seeds=0, out=tmp_path / "a")
    with pytest.raises(DriftlabError, match="did you mean cartpole-tiny"):
        api.discover("cartpole-tiy", out=tmp_path / "b")
    with pytest.raises(DriftlabError, match="nothing to fit"):
        api.distill("dpo", symbolic=False, families=False, out=tmp_path / "c")
    with pytest.raises(DriftlabError, match="outside"):
        api.inspect("dpo", progress_values=[2.0], out=tmp_path / "d")
    assert list(tmp_path.iterdir()) == []


def test_discover_resume_inspect_distill_train_compare(tmp_path: Path):
    found = api.discover("cartpole-tiny", settings=TINY_DISCOVERY, out=tmp_path / "discover",
                         progress=False)
    assert found.primary and found.outcome.generations == 1
    assert found.config.population == 4 and found.config.train[CARTPOLE]["num_envs"] == 4
    assert (found.run_dir / "drift.json").is_file()
    more = api.discover(resume=found.run_dir, settings={"generations": 2}, progress=False)
    assert more.outcome.generations == 2 and more.run_dir == found.run_dir

    seen = api.inspect(found.run_dir, compare=[], points=21, out=tmp_path / "inspect")
    assert (seen.run_dir / "conditions.json").is_file() and seen.plots
    assert all(p.is_file() for p in seen.plots) and seen.conditions.text()

    # (the family fits take minutes on a learned drift: a small symbolic search of DPO here)
    formula = api.distill("dpo", families=False, population=50, generations=2, points=11,
                          out=tmp_path / "distill")
    assert formula.drift_file == formula.run_dir / "drift.json" and formula.drift_file.is_file()
    assert formula.distillation.best.family

    runs = [api.train(algo, CARTPOLE, drift=drift, settings=TINY_TRAIN, progress=False,
                      out=tmp_path / f"train-{algo}").run_dir
            for algo, drift in (("ppo", None), ("lpo", found.run_dir),
                                ("distilled", formula.drift_file))]
    table = api.compare(runs, random_returns={CARTPOLE: 9.0}, bootstrap=20,
                        out=tmp_path / "compare")
    assert sorted(row["label"].split(" ")[0] for row in table.data["final"]) == \
        ["distilled", "lpo", "ppo"]
    assert "IQM" in table.text and (table.run_dir / "comparison.md").read_text() == table.text
    assert table.data["normalization"]["random_return"] == {CARTPOLE: 9.0}


def test_evaluate(tmp_path: Path):
    acrobot = "gymnax/Acrobot-v1"
    report = api.evaluate("dpo", envs=[acrobot], seeds=2, baselines=["ppo"], timesteps=4096,
                          random_returns={acrobot: -1000.0}, bootstrap=50, progress=False,
                          out=tmp_path / "eval")
    assert report.out == tmp_path / "eval" and (report.out / "report.md").is_file()
    assert set(report.aggregate) == {"dpo", "ppo"}


@pytest.mark.parametrize("argv", [["quickstart", "--tiny"],
                                  ["experiment", "lpo-minatar", "--smoke", "--no-progress"]])
def test_a_failing_stage_surfaces_its_own_error(tmp_path, capsys, monkeypatch, argv):
    def broken(*args, **kwargs):
        raise DriftlabError("population must be >= 2, got 1")

    monkeypatch.setattr(api, "discover", broken)
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "population must be >= 2, got 1" in err, err
    assert "failed (exit" not in err
    if argv[0] == "quickstart":
        assert f"continue with --resume {tmp_path / 'run'}" in err
