"""A run whose losses go NaN is reported as diverged (console, summary.json),
never ranked as a number by compare; every JSON file is strict JSON."""

from __future__ import annotations

import json

import jax.numpy as jnp
import pytest

from driftlab.algorithms import make_drift
from driftlab.algorithms.drift_io import save_drift
from driftlab.algorithms.storage import to_builtin
from driftlab.cli import main

TINY = ["--env", "gymnax/CartPole-v1", "--timesteps", "2048", "--set", "num_envs=4",
        "--set", "num_steps=32", "--no-progress"]


def strict(text: str):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def nan_drift(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nan-drift")
    lpo = make_drift("lpo")
    params = {"w_in": lpo.default_params["w_in"].at[0, 0].set(jnp.nan),
              "w_out": lpo.default_params["w_out"].at[0].set(1.0)}
    save_drift(folder, lpo, params)
    return folder


def test_nan_training_is_reported_as_diverged(nan_drift, tmp_path, capsys):
    out = tmp_path / "nan"
    assert main(["train", "--algo", "lpo", "--drift", str(nan_drift), "--seeds", "2",
                 "--out", str(out), *TINY]) == 0
    captured = capsys.readouterr()
    assert "DIVERGED" in captured.err and "seed 0 from update 1" in captured.err
    assert "every seed diverged" in captured.out
    summary = strict((out / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert summary["diverged_seeds"] == [0, 1] and summary["diverged_from_update"] == [1, 1]
    assert summary["final_return_per_seed"] == [None, None]
    for line in (out / "metrics.jsonl").read_text().splitlines():
        record = strict(line)  # null, not a bare NaN token
        assert record["policy_loss"] is None


def test_compare_does_not_rank_a_diverged_run(nan_drift, tmp_path, capsys):
    good, bad = tmp_path / "ppo", tmp_path / "nan"
    assert main(["train", "--algo", "ppo", "--seeds", "2", "--out", str(good), *TINY]) == 0
    assert main(["train", "--algo", "lpo", "--drift", str(nan_drift), "--seeds", "2",
                 "--out", str(bad), *TINY]) == 0
    assert main(["compare", str(good), str(bad), "--out", str(tmp_path / "cmp"),
                 "--bootstrap", "20"]) == 0
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    row = next(line for line in table.splitlines() if "lpo" in line and "CartPole" in line)
    assert "diverged" in row and "2 (2 diverged)" in row
    data = strict((tmp_path / "cmp" / "comparison.json").read_text())
    lpo_rows = [r for r in data["final"] if r["label"].startswith("lpo")]
    assert lpo_rows[0]["iqm"] is None and lpo_rows[0]["diverged"] == 2
    norm = next(v for k, v in data["normalized"].items() if k.startswith("lpo"))
    assert norm["iqm"] is None
    ppo = next(r for r in data["final"] if r["label"] == "ppo")
    assert ppo["iqm"] is not None and ppo["diverged"] == 0


def test_to_builtin_writes_null_for_non_finite():
    assert to_builtin({"a": float("nan"), "b": [1.0, float("inf")], "c": jnp.array(jnp.nan)}) \
        == {"a": None, "b": [1.0, None], "c": None}


@pytest.mark.parametrize("option, value", [("alpha", "0"), ("beta", "-1")])
def test_dpo_constants_out_of_range_are_one_line(option, value, tmp_path, capsys):
    assert main(["train", "--algo", "dpo", "--set", f"drift.{option}={value}",
                 "--out", str(tmp_path / "x"), *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"DPO's {option} must be a positive number" in err[0]
    assert not (tmp_path / "x").exists()
