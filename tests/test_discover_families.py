"""Discovery over other drift families than LPO (the `drift: {kind: ...}` block):
DPO's alpha and beta, PPO's eps and a distilled formula's constants, evolved on
an unconstrained scale that keeps them valid, exported with their real values,
resumed bit for bit; tiny CartPole inner runs."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from driftlab.algorithms.drift_io import load_drift
from driftlab.cli import main
from driftlab.discover_command import build_config
from driftlab.discovery.config import DiscoveryConfig, DiscoveryError
from driftlab.discovery.loop import Discovery, export_drifts

# update_epochs 2: the drift only acts after the first pass (ratio 1 before it).
TINY = ["--set", "inner.total_timesteps=1024", "--set", "inner.num_envs=4",
        "--set", "inner.num_steps=32", "--set", "inner.update_epochs=2",
        "--set", "inner.num_minibatches=2", "--set", "inner.actor_hidden=[16]",
        "--set", "inner.critic_hidden=[16]", "--set", "population=6", "--set", "eval_seeds=2",
        "--set", "eval_every=2", "--set", "rollouts_per_member=1", "--set", "checkpoint_every=1",
        "--no-progress"]
TINY_SETTINGS = {"inner": {"total_timesteps": 1024, "num_envs": 4, "num_steps": 32,
                           "update_epochs": 2, "num_minibatches": 2, "actor_hidden": [16],
                           "critic_hidden": [16]},
                 "rollouts_per_member": 1, "eval_seeds": 2}
TRAIN = ["--env", "gymnax/CartPole-v1", "--timesteps", "1024", "--set", "num_envs=4",
         "--set", "num_steps=32", "--no-progress"]
DPO_FORMULA = ("Piecewise((Max(0, A*(r - 1) - alpha*tanh(A*(r - 1)/alpha)), A >= 0), "
               "(Max(0, A*log_r - beta*tanh(A*log_r/beta)), True))")


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def tiny_config(preset: str, **settings) -> DiscoveryConfig:
    return build_config(preset, None, {**TINY_SETTINGS, **settings})


@pytest.mark.slow
def test_dpo_discovery_keeps_constants_valid_exports_them_and_resumes_bitwise(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    base = ["discover", "--preset", "dpo-cartpole", *TINY, "--set", "sigma=1.0"]
    assert main([*base, "--set", "generations=3", "--out", str(whole)]) == 0
    assert main([*base, "--set", "generations=2", "--out", str(split)]) == 0
    assert main(["discover", "--resume", str(split), "--set", "generations=3",
                 "--no-progress"]) == 0
    for name in ("checkpoints/gen_000003.ckpt", "drift.params.msgpack", "drift.json",
                 "drift_best.params.msgpack"):
        assert (whole / name).read_bytes() == (split / name).read_bytes(), name
    logged = records(split)
    assert [r["generation"] for r in logged] == [1, 2, 3]
    for record in logged:  # the ES mean's constants, every generation
        assert set(record["constants"]) == {"alpha", "beta"}
        assert all(np.isfinite(v) and v > 0 for v in record["constants"].values())
    # The export holds DPO's real constants, in the JSON and the parameter file.
    spec = json.loads((whole / "drift.json").read_text())
    drift, params = load_drift(whole)
    assert drift.spec["kind"] == spec["kind"] == "dpo"
    for name in ("alpha", "beta"):
        assert spec[name] > 0 and float(params[name]) == pytest.approx(spec[name], rel=1e-6)
        assert spec[name] == pytest.approx(logged[-1]["constants"][name], rel=1e-6)
    assert (spec["alpha"], spec["beta"]) != pytest.approx((2.0, 0.6))  # the ES moved
    best, best_params = load_drift(whole / "drift_best.json")
    assert best.spec["kind"] == "dpo" and float(best_params["alpha"]) > 0
    # ... and trains, inspects and distills exactly as an LPO run's export does.
    assert main(["train", "--algo", "dpo", "--drift", str(whole), *TRAIN,
                 "--out", str(tmp_path / "train")]) == 0
    assert json.loads((tmp_path / "train" / "summary.json").read_text())
    assert main(["inspect", str(whole), "--points", "21", "--out", str(tmp_path / "inspect")]) == 0
    assert main(["distill", str(whole), "--no-symbolic", "--points", "11",
                 "--out", str(tmp_path / "distill")]) == 0


def test_every_member_stays_valid_however_far_the_es_steps():
    """sigma 50 on the unconstrained scale: members reach the clip bounds, yet
    DPO's alpha, beta stay > 0 and finite and PPO's eps inside (0, 1); the
    generation runs (an unusable member could only score NaN and rank worst)."""
    for kind, strategy, names in (("dpo", "CMA_ES", ("alpha", "beta")), ("ppo", "SNES", ("eps",))):
        config = tiny_config("dpo-cartpole", drift={"kind": kind}, strategy=strategy,
                             sigma=50.0, population=8)
        discovery = Discovery(config)
        state = discovery.init()
        for _ in range(2):
            state, info = discovery.step(state)
            members = jax.tree.map(np.asarray, info["population"])
            assert set(members) == set(names)
            for name in names:
                assert np.all(np.isfinite(members[name])) and np.all(members[name] > 0), members
                if kind == "ppo":
                    assert np.all(members[name] < 1), members
            assert np.asarray(info["clean_fitness"]).shape == (8,)
        mean = discovery.mean_params(state)
        for name in names:
            assert 0 < float(mean[name]) < (1 if kind == "ppo" else np.inf)


def test_ppo_discovery_keeps_eps_in_the_open_unit_interval(tmp_path):
    config = tiny_config("dpo-cartpole", drift={"kind": "ppo"}, strategy="SNES", sigma=2.0,
                         population=6, generations=2)
    discovery = Discovery(config)
    assert float(discovery.init_params["eps"]) == pytest.approx(0.2)
    assert float(discovery.space.decode(discovery.init_coords)["eps"]) == pytest.approx(0.2)
    state = discovery.init()
    for _ in range(2):
        state, info = discovery.step(state)
        eps = np.asarray(info["population"]["eps"])
        assert np.all((eps > 0) & (eps < 1)), eps
    export_drifts(discovery, state, tmp_path, 2, float("nan"))
    drift, params = load_drift(tmp_path)  # make_drift("ppo", eps=...) checks (0, 1) itself
    spec = json.loads((tmp_path / "drift.json").read_text())
    assert drift.spec["kind"] == "ppo" and 0 < spec["eps"] < 1
    assert float(params["eps"]) == pytest.approx(spec["eps"], rel=1e-6)


def _formula_file(folder: Path, alpha: float = 1.5, beta: float = 0.5) -> Path:
    """A formula drift.json as `driftlab distill` writes it (DPO's form, own constants)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "drift.json"
    path.write_text(json.dumps({"kind": "distilled", "expression": DPO_FORMULA,
                                "constants": {"alpha": alpha, "beta": beta},
                                "params": {"alpha": alpha, "beta": beta},
                                "family": "dpo", "source": "distill"}))
    return path


def test_distilled_discovery_starts_from_the_formula_and_exports_a_trainable_drift(tmp_path):
    formula = _formula_file(tmp_path / "distill")
    config = tiny_config("dpo-cartpole", drift={"kind": "distilled", "from": str(formula)})
    assert config.to_dict()["drift"] == {"kind": "distilled", "from": str(formula)}
    discovery = Discovery(config)
    assert {k: float(v) for k, v in discovery.init_params.items()} == \
        pytest.approx({"alpha": 1.5, "beta": 0.5})
    start = discovery.space.decode(discovery.init_coords)
    assert {k: float(v) for k, v in start.items()} == pytest.approx({"alpha": 1.5, "beta": 0.5})

    run = tmp_path / "run"  # a distill run directory works as `from:` too
    assert main(["discover", "--preset", "dpo-cartpole", *TINY, "--set", "drift.kind=distilled",
                 "--set", f"drift.from={formula.parent}", "--set", "generations=2",
                 "--out", str(run)]) == 0
    spec = json.loads((run / "drift.json").read_text())
    assert spec["kind"] == "distilled" and spec["expression"] == DPO_FORMULA
    assert spec["refined_from"] == str(formula.parent) and spec["family"] == "dpo"
    drift, params = load_drift(run)
    constants = records(run)[-1]["constants"]
    for name in ("alpha", "beta"):  # the evolved constants, in the spec and the params
        assert spec["constants"][name] == pytest.approx(float(params[name]), rel=1e-6)
        assert spec["constants"][name] == pytest.approx(constants[name], rel=1e-6)
        assert spec["constants"][name] > 0  # the sign it was fitted with
    # Refining the refined formula: it is the same family, so it is a valid init_drift.
    again = tiny_config("dpo-cartpole", drift={"kind": "distilled", "from": str(formula)},
                        init_drift=str(run))
    assert float(Discovery(again).init_params["alpha"]) == pytest.approx(
        spec["constants"]["alpha"], rel=1e-6)
    out = tmp_path / "train"
    assert main(["train", "--algo", "distilled", "--drift", str(run), *TRAIN, "--out",
                 str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())


def test_mismatched_init_drift_is_one_line(tmp_path, capsys):
    ppo = tmp_path / "ppo.json"
    ppo.write_text(json.dumps({"kind": "ppo", "eps": 0.3}))
    out = tmp_path / "out"
    assert main(["discover", "--preset", "dpo-cartpole", "--set", f"init_drift={ppo}",
                 "--out", str(out), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "is not a DPO drift" in lines[0] and "it is a PPO drift" in lines[0], lines[0]
    assert not out.exists()


def test_drift_block_round_trips_and_old_configs_still_read():
    old = tiny_config("cartpole-tiny")  # `drift: {temporal, ppo_init}` without a kind
    assert old.drift.kind == "lpo" and old.drift.options["ppo_init"]
    assert old.to_dict()["drift"] == {"kind": "lpo", "temporal": False, "ppo_init": True,
                                      "hidden": 128}
    flat = {k: v for k, v in old.to_dict().items() if k != "drift"}  # as configs were saved
    assert DiscoveryConfig.from_dict({**flat, "temporal": False, "ppo_init": True,
                                      "hidden": 128}) == old
    for block in ({"kind": "dpo", "alpha": 1.0}, {"kind": "ppo"}, {"kind": "ta-lpo"}):
        config = tiny_config("dpo-cartpole", drift=block)
        assert DiscoveryConfig.from_dict(config.to_dict()) == config
    assert tiny_config("dpo-cartpole", drift={"kind": "ta-lpo"}).drift.options["temporal"]
    with pytest.raises(DiscoveryError, match="unknown drift kind 'dpoo' .did you mean dpo"):
        tiny_config("dpo-cartpole", drift={"kind": "dpoo"})
    with pytest.raises(DiscoveryError, match="belongs to kind lpo, not dpo"):
        tiny_config("dpo-cartpole", temporal=True)


def test_every_discovery_preset_builds_valid_settings():
    """Each configs/discover/*.yaml resolves to a DiscoveryConfig that validates (the
    presets' envs, inner settings and drift blocks), without building an env."""
    from driftlab.discover_command import list_presets

    for name in list_presets():
        config = build_config(name, None, {})
        assert config.envs and config.drift.kind in ("lpo", "dpo", "ppo", "distilled"), name


def test_a_resume_reads_the_runs_own_copies_of_drift_from_and_init_drift(tmp_path):
    """A discovery keeps copies of the files its settings name (inputs/); after the
    originals change (the formula re-distilled in place) or go (the start deleted), a
    resume still continues bitwise as the uninterrupted run did, and the exports keep
    naming the original formula."""
    formula = _formula_file(tmp_path / "distill")
    start = _formula_file(tmp_path / "start", alpha=1.2, beta=0.7)  # the same formula
    args = ["discover", "--preset", "dpo-cartpole", *TINY, "--set", "drift.kind=distilled",
            "--set", f"drift.from={formula}", "--set", f"init_drift={start.parent}"]
    assert main([*args, "--set", "generations=2", "--out", str(tmp_path / "whole")]) == 0
    run = tmp_path / "run"
    assert main([*args, "--set", "generations=1", "--out", str(run)]) == 0
    kept = json.loads((run / "inputs" / "family.json").read_text())
    assert kept["source"] == str(formula) and kept["expression"] == DPO_FORMULA
    assert json.loads((run / "inputs" / "init_drift.json").read_text())["source"] == \
        str(start.parent)
    _formula_file(tmp_path / "distill", alpha=9.0, beta=9.0)
    start.unlink()
    assert main(["discover", "--resume", str(run), "--set", "generations=2",
                 "--no-progress"]) == 0

    def last(folder: Path) -> dict:  # generation 1 of the 1-generation run has a final eval
        return {k: v for k, v in records(folder)[-1].items() if k != "seconds"}

    assert last(run)["generation"] == 2 and last(run) == last(tmp_path / "whole")
    spec = json.loads((run / "drift.json").read_text())
    assert spec == json.loads((tmp_path / "whole" / "drift.json").read_text())
    assert spec["refined_from"] == str(formula)


def test_an_inner_override_a_preset_shadows_per_env_is_refused():
    """`--set inner.total_timesteps=N` on a preset with per-env budgets would leave
    those budgets as they are (inner_per_env wins): refused in one line naming the
    envs, unless each is set under inner_per_env too; an unshadowed key passes."""
    from driftlab.discovery_settings import build_config
    from driftlab.errors import DriftlabError

    preset = "transfer-classic-wide"
    with pytest.raises(DriftlabError, match="does not reach gymnax/CartPole-v1") as err:
        build_config(preset, None, {"inner": {"total_timesteps": 1024}})
    assert "--set inner_per_env.gymnax/CartPole-v1.total_timesteps=" in str(err.value)
    assert "\n" not in str(err.value)
    budgets = {env: {"total_timesteps": 8192} for env in (
        "gymnax/CartPole-v1", "gymnax/Acrobot-v1", "gymnax/Catch-bsuite", "gymnax/Pendulum-v1",
        "gymnax/MountainCarContinuous-v0", "gymnax/PointRobot-misc")}
    config = build_config(preset, None, {"inner": {"total_timesteps": 1024},
                                         "inner_per_env": budgets})
    assert {t["total_timesteps"] for t in config.train.values()} == {8192}
    assert build_config(preset, None, {"inner": {"num_envs": 4}}).population == 8


def test_an_override_a_train_block_shadows_is_refused(tmp_path):
    """A config file's `train: {ENV: ...}` (e.g. copied from a run's config.yaml) wins
    over `inner` and `inner_per_env`: `--set inner.KEY` or `inner_per_env.ENV.KEY` that
    it sets is refused naming `--set train.ENV.KEY`; `--set train.ENV.KEY` reaches it."""
    from driftlab.algorithms.storage import write_yaml
    from driftlab.discovery_overrides import check_not_shadowed
    from driftlab.discovery_settings import build_config
    from driftlab.errors import DriftlabError

    env = "gymnax/CartPole-v1"
    file = tmp_path / "copied.yaml"
    write_yaml(file, {"envs": [env], "train": {env: {"total_timesteps": 2048}}})
    for overrides, said in (({"inner": {"total_timesteps": 1024}}, "inner.total_timesteps"),
                            ({"inner_per_env": {env: {"total_timesteps": 1024}}},
                             f"inner_per_env.{env}.total_timesteps")):
        with pytest.raises(DriftlabError, match=f"--set {said} does not reach {env}") as err:
            build_config(None, str(file), overrides)
        assert f"--set train.{env}.total_timesteps=" in str(err.value)
    config = build_config(None, str(file), {"inner": {"total_timesteps": 1024},
                                            "train": {env: {"total_timesteps": 1024}}})
    assert config.train[env]["total_timesteps"] == 1024
    # Nested settings: only the same leaf (or a value replacing its mapping) shadows.
    raw = {"inner_per_env": {env: {"drift": {"eps": 0.3}}}}
    check_not_shadowed(raw, {"inner": {"drift": {"beta": 1.0}}})
    with pytest.raises(DriftlabError, match="inner.drift.eps does not reach"):
        check_not_shadowed(raw, {"inner": {"drift": {"eps": 0.1}}})
    with pytest.raises(DriftlabError, match="inner.drift.eps does not reach"):
        check_not_shadowed({"train": {env: {"drift": None}}}, {"inner": {"drift": {"eps": 0.1}}})
