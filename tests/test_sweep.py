"""`driftlab train --sweep`: a grid of hyperparameters and drift constants x seeds
trained in one compiled program, written as one run directory whose combinations
`compare` reads as separate groups; bad grids are one line each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import Lowerings

from driftlab import training
from driftlab.analysis.compare import load_runs
from driftlab.cli import main
from driftlab.sweep import SweepError, format_value, parse_sweep
from driftlab.sweep_run import train_sweep

ENV = "gymnax/CartPole-v1"
# 13 updates of 4 envs x 16 steps in chunks of 4 (4 + 4 + 4 + 1: the padded last chunk).
SMALL = {"num_envs": 4, "num_steps": 16, "update_epochs": 2, "num_minibatches": 2}
TIMESTEPS = 13 * 64
SEEDS, SEED = 2, 5
# lr 1e-2 moves the policy far enough in 13 updates for DPO's alpha to matter.
GRID = ["--sweep", "learning_rate=3e-4,1e-2", "--sweep", "drift.alpha=0.05,2"]
LABELS = ["learning_rate=3e-4,drift.alpha=0.05", "learning_rate=3e-4,drift.alpha=2",
          "learning_rate=0.01,drift.alpha=0.05", "learning_rate=0.01,drift.alpha=2"]


def train_args(out: Path, *extra: str, algo: str = "dpo") -> list[str]:
    sets = [x for key, value in SMALL.items() for x in ("--set", f"{key}={value}")]
    return ["train", "--algo", algo, "--env", ENV, "--timesteps", str(TIMESTEPS),
            "--seeds", str(SEEDS), "--seed", str(SEED), "--chunks", "4", "--no-progress",
            *sets, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """(run dir, jitted function names lowered, stdout) of one CLI sweep run."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("sweep") / "run"
    text = io.StringIO()
    with Lowerings() as lowered, contextlib.redirect_stdout(text):
        assert main(train_args(out, *GRID)) == 0
    return out, list(lowered.names), text.getvalue()


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_the_whole_grid_is_one_compiled_program(sweep):
    _, names, stdout = sweep
    assert [n for n in names if "run_chunk" in n] == ["jit(run_chunk)"], names
    assert [n for n in names if "init" in n] == ["jit(init_grid)"], names
    for label in LABELS:  # one printed line per setting
        assert label in stdout


def test_run_directory_records_the_grid_and_each_combination(sweep):
    run, _, _ = sweep
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["command"] == "train" and config["seeds"] == SEEDS
    assert config["sweep"]["layout"] == "vmap"  # every combination x seed in one batch
    assert config["sweep"]["grid"] == {"learning_rate": [3e-4, 1e-2], "drift.alpha": [0.05, 2.0]}
    combos = config["sweep"]["combinations"]
    assert [c["label"] for c in combos] == LABELS
    assert combos[2]["settings"] == {"learning_rate": 1e-2, "drift.alpha": 0.05}
    assert not (run / "metrics.jsonl").exists()  # no pooled metrics at the top
    summary = json.loads((run / "summary.json").read_text())
    assert [c["label"] for c in summary["combinations"]] == LABELS
    for combo, row in zip(combos, summary["combinations"], strict=True):
        d = run / combo["dir"]
        for name in ("config.yaml", "metrics.jsonl", "summary.json", "params.msgpack",
                     "drift.json"):
            assert (d / name).is_file(), d / name
        own = yaml.safe_load((d / "config.yaml").read_text())
        assert own["train"]["hyperparams"]["learning_rate"] == combo["settings"]["learning_rate"]
        assert own["drift"]["alpha"] == pytest.approx(combo["settings"]["drift.alpha"])
        assert own["sweep_combination"]["label"] == combo["label"]
        assert len(_lines(d / "metrics.jsonl")) == 13
        assert len(row["final_return_per_seed"]) == SEEDS
    assert (run / "learning_curve.png").is_file()


def test_combinations_differ_where_they_should(sweep):
    run, _, _ = sweep
    dirs = [run / c["dir"] for c in
            yaml.safe_load((run / "config.yaml").read_text())["sweep"]["combinations"]]
    returns = [np.array([r["episode_return_per_seed"] for r in _lines(d / "metrics.jsonl")],
                        dtype=float)
               for d in dirs]
    params = [(d / "params.msgpack").read_bytes() for d in dirs]
    assert len(set(params)) == 4  # every setting trained other agents
    assert not np.array_equal(returns[0], returns[2], equal_nan=True)  # learning rate
    assert not np.array_equal(returns[2], returns[3], equal_nan=True)  # alpha, at lr 1e-2
    # The two seeds of a combination are different agents.
    assert not np.array_equal(returns[2][:, 0], returns[2][:, 1], equal_nan=True)


def _single(tmp_path: Path, learning_rate: float, alpha: float) -> Path:
    """The ordinary (non-sweep) run of one setting, same seeds; returns its directory."""
    overrides = {**SMALL, "learning_rate": learning_rate, "drift": {"alpha": alpha}}
    settings = training.resolve_settings(ENV, overrides=overrides, timesteps=TIMESTEPS,
                                         algo="dpo")
    out = tmp_path / f"single-{learning_rate}-{alpha}"
    training.train_run(ENV, "dpo", settings, seeds=SEEDS, seed=SEED, chunks=4, out=out,
                       progress=False, plot=False)
    return out


def _assert_close_runs(mine: Path, theirs: Path, what: str) -> None:
    """Every logged number (per update, per seed) within atol 1e-6 + rtol 1e-4 and the
    final parameters within atol 1e-5 + rtol 1e-4."""
    from flax import serialization

    a, b = _lines(mine / "metrics.jsonl"), _lines(theirs / "metrics.jsonl")
    assert len(a) == len(b) == 13
    for key in b[0]:
        np.testing.assert_allclose(np.array([r[key] for r in a], dtype=float),
                                   np.array([r[key] for r in b], dtype=float),
                                   rtol=1e-4, atol=1e-6, err_msg=f"{what}: {key}")
    pa, pb = (serialization.msgpack_restore((d / "params.msgpack").read_bytes())
              for d in (mine, theirs))
    import jax

    for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, err_msg=what)


def test_a_combination_is_the_single_run_with_its_setting(sweep, tmp_path):
    """Same keys (seed s of `--seed 5 --seeds 2`), same trainer: a combination is the
    ordinary run with its setting to float32 rounding (`_assert_close_runs`). Not
    bitwise in general: the sweep passes as values what the ordinary run compiles in as
    constants, and XLA folds and fuses constants differently (see the next test); for
    these shapes and this setting it happens to be bitwise on this CPU, but a long run
    at a large learning rate can drift apart (benchmarks/sweep.py: 4 of 8 settings with
    other final returns after 64 updates), as any change of float rounding does."""
    run, _, _ = sweep
    single = _single(tmp_path, 1e-2, 2.0)
    combo = run / "combinations" / f"03_{LABELS[3]}"
    _assert_close_runs(combo, single, LABELS[3])
    assert (combo / "drift.params.msgpack").read_bytes() == \
        (single / "drift.params.msgpack").read_bytes()
    config = yaml.safe_load((combo / "config.yaml").read_text())
    theirs = yaml.safe_load((single / "config.yaml").read_text())
    assert config["train"] == theirs["train"] and config["drift"] == theirs["drift"]

    # compare: the sweep's combinations are four groups, never pooled with each other or
    # with the plain run of the same setting.
    groups = load_runs([run, single])
    assert sorted(g.label for g in groups) == sorted(["dpo", *(f"dpo {x}" for x in LABELS)])
    for group in groups:
        assert group.returns.shape == (SEEDS, 13)


def test_the_map_layout_agrees(sweep, tmp_path):
    """Layout "map" (the combinations one after another inside the one program, each as
    the ordinary run's 2 seeds) is again one compiled program and agrees with the
    default "vmap" layout to float32 rounding (`_assert_close_runs`)."""
    run, _, _ = sweep
    settings = training.resolve_settings(ENV, overrides=SMALL, timesteps=TIMESTEPS, algo="dpo")
    with Lowerings() as lowered:
        out = train_sweep(ENV, "dpo", settings, {"learning_rate": [3e-4, 1e-2],
                                                 "drift.alpha": [0.05, 2]},
                          seeds=SEEDS, seed=SEED, chunks=4, out=tmp_path / "map",
                          progress=False, plot=False, layout="map")
    assert [n for n in lowered.names if "run_chunk" in n] == ["jit(run_chunk)"], lowered.names
    assert out.grid.labels == LABELS and out.returns.shape == (4, SEEDS, 13)
    for label, mine in zip(LABELS, out.combination_dirs, strict=True):
        _assert_close_runs(mine, next((run / "combinations").glob(f"*_{label}")), label)
    with pytest.raises(SweepError, match="layout must be one of vmap, map"):
        train_sweep(ENV, "dpo", settings, {"gamma": [0.9]}, out=tmp_path / "x", layout="all")


def test_why_a_value_is_not_a_constant_bitwise():
    """Why a combination matches the ordinary run only to rounding: the ordinary run
    compiles its constants into the program, the sweep passes them as values. With
    DPO's alpha a constant, XLA simplifies x / alpha: for alpha = 0.05 some drift values
    differ in the last bits from a traced alpha's (powers of two such as 2 are exact).
    Fusion and FMA choices that depend on the program differ likewise."""
    import jax
    import jax.numpy as jnp

    from driftlab.algorithms.drifts import dpo_drift_fn

    ratio = jnp.exp(0.2 * jax.random.normal(jax.random.key(0), (4096,)))
    adv = jax.random.normal(jax.random.key(1), (4096,))

    def drift(alpha, ratio, adv):  # beta stays a constant, as an unswept constant does
        params = {"alpha": alpha, "beta": jnp.float32(0.6)}
        return dpo_drift_fn(params, ratio, jnp.log(ratio), adv, 0.0)

    def compiled_with(alpha: float):  # alpha a constant of the program (the ordinary run)
        return jax.jit(lambda r, a: drift(jnp.float32(alpha), r, a))

    for alpha, bitwise in ((2.0, True), (0.05, False)):
        folded = np.asarray(compiled_with(alpha)(ratio, adv))
        traced = np.asarray(jax.jit(drift)(jnp.float32(alpha), ratio, adv))
        assert np.array_equal(folded, traced) == bitwise, alpha
        np.testing.assert_allclose(folded, traced, rtol=1e-5, atol=1e-7)


def test_compare_reads_a_sweep_as_one_group_per_setting(sweep, tmp_path, capsys):
    run, _, _ = sweep
    reference = f"dpo {LABELS[0]}"
    assert main(["compare", str(run), "--reference", reference, "--random-returns", "off",
                 "--bootstrap", "20", "--out", str(tmp_path / "cmp")]) == 0
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert sorted(r["label"] for r in data["final"]) == sorted(f"dpo {x}" for x in LABELS)
    assert all(r["seeds"] == SEEDS for r in data["final"])
    assert len(data["groups"]) == 4 and all(len(d) == 1 for d in data["groups"].values())
    capsys.readouterr()


@pytest.mark.parametrize("extra, message", [
    (["--sweep", "num_envs=4,8"], "num_envs is structural (it sets the number of environments"),
    (["--sweep", "update_epochs=2,4"], "update_epochs is structural"),
    (["--sweep", "total_timesteps=1e4,2e4"], "total_timesteps is structural"),
    (["--sweep", "actor_hidden=32,64"], "actor_hidden is structural (it sets the policy"),
    (["--sweep", "env=1,2"], "env is structural"),
    (["--sweep", "learning_rat=1e-4,3e-4"], "unknown setting (did you mean learning_rate?)"),
    (["--sweep", "drift.alpah=1,2"], "no constant 'alpah' (did you mean drift.alpha?)"),
    (["--sweep", "learning_rate=fast,3e-4"], "'fast' is not a number"),
    (["--sweep", "gamma=nan"], "'nan' is not a finite number"),
    (["--sweep", "learning_rate="], "learning_rate= has no values"),
    (["--sweep", "learning_rate=1e-4,,3e-4"], "has an empty value"),
    (["--sweep", "learning_rate"], "--sweep expects KEY=V1,V2"),
    (["--sweep", "learning_rate=1e-4", "--sweep", "learning_rate=3e-4"], "is given twice"),
    (["--sweep", "learning_rate=1e-4,1e-4"], "lists 1e-4 twice"),
    (["--sweep", "learning_rate=-1"], "learning_rate must be a positive number"),
    (["--sweep", "drift.alpha=0,1"], "DPO's alpha must be a positive number"),
    (["--sweep", "seeds=1,2"], "--seeds N already trains N seeds"),
])
def test_bad_sweeps_are_one_line(extra, message, tmp_path, capsys):
    assert main(train_args(tmp_path / "run", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("driftlab train: error: --sweep") and "\n" not in err, err
    assert message in err, err
    assert not (tmp_path / "run").exists()  # refused before the run directory


def test_a_drift_key_the_algorithm_lacks_is_one_line(tmp_path, capsys):
    assert main(train_args(tmp_path / "run", "--sweep", "drift.alpha=1,2", algo="ppo")) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("driftlab train: error: --sweep drift.alpha: the ppo drift has no constant "
                   "'alpha'; its constants: drift.eps"), err


def test_python_api_takes_the_grid_as_a_mapping(tmp_path):
    settings = training.resolve_settings(ENV, overrides=SMALL, timesteps=TIMESTEPS, algo="ppo")
    with pytest.raises(SweepError, match="num_minibatches is structural"):
        training.train_run(ENV, "ppo", settings, out=tmp_path / "a",
                           sweep={"num_minibatches": [2, 4]})
    with pytest.raises(SweepError, match="needs a list of values"):
        training.train_run(ENV, "ppo", settings, out=tmp_path / "b", sweep={"gamma": []})
    with pytest.raises(SweepError, match="is given twice"):
        training.train_run(ENV, "ppo", settings, out=tmp_path / "c",
                           sweep={"gamma": [0.9], "hyperparams.gamma": [0.99]})
    with pytest.raises(SweepError, match="True is not a number"):
        training.train_run(ENV, "ppo", settings, out=tmp_path / "d", sweep={"gamma": [True]})
    assert not any(tmp_path.iterdir())


def test_parse_and_labels():
    assert parse_sweep(["learning_rate=1e-4, 3e-4", "hyperparams.gamma=0.9,0.99"]) == {
        "learning_rate": ["1e-4", "3e-4"], "gamma": ["0.9", "0.99"]}
    assert [format_value(v) for v in (3e-4, 1e-3, 2.5e-4, 2.0, 0.99, 1000.0, 1e6, -0.01)] == \
        ["3e-4", "0.001", "0.00025", "2", "0.99", "1000", "1e6", "-0.01"]
