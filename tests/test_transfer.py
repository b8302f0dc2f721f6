"""Discovery for transfer (issue 18): fitness over envs of any return sign,
randomised inner settings shared by a generation's members, and disjoint
meta-training / validation / test env sets where only validation chooses the
shipped snapshot and a test env is never touched."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from driftlab import envs
from driftlab.algorithms.drift_io import load_drift
from driftlab.algorithms.evaluation import random_policy_return
from driftlab.cli import main
from driftlab.discover_command import resolve_discovery_settings
from driftlab.discovery import fitness
from driftlab.discovery.config import DiscoveryConfig, DiscoveryError
from driftlab.discovery.inner_settings import InnerSettings, parse_randomize
from driftlab.discovery.loop import Discovery, score_of_means

ACROBOT, PENDULUM, CARTPOLE = "gymnax/Acrobot-v1", "gymnax/Pendulum-v1", "gymnax/CartPole-v1"
TINY = {"total_timesteps": 2048, "num_envs": 4, "num_steps": 64, "update_epochs": 2,
        "num_minibatches": 2}


def test_random_ppo_score_is_zero_at_random_and_one_at_ppo_for_negative_returns():
    # Acrobot-like: random -500, PPO -200; Pendulum-like: random -1200, PPO -300.
    random = jnp.array([-500.0, -1200.0])
    ppo = jnp.array([-200.0, -300.0])
    returns = jnp.array([[-500.0, -1200.0],   # random on both: 0
                         [-200.0, -300.0],    # PPO on both: 1
                         [-100.0, -1200.0],   # better than PPO on Acrobot: (400/300 + 0) / 2
                         [-350.0, -750.0]])   # half-way on both: 0.5
    got = fitness.combine_env_returns(returns, ppo, random=random)
    np.testing.assert_allclose(got, [0.0, 1.0, 2.0 / 3.0, 0.5], rtol=1e-6)
    # the ratio a negative reference would give ranks the worse member higher
    ratio = fitness.combine_env_returns(returns[:, :1], ppo[:1])
    assert float(ratio[0]) > float(ratio[1])  # random "beats" PPO: why ppo_ratio refuses it
    scored = fitness.combine_env_returns(returns[:, :1], ppo[:1], random=random[:1])
    assert float(scored[2]) > float(scored[1]) > float(scored[0])  # the right order


def test_score_of_means_is_the_ratio_of_mean_returns_not_the_mean_of_ratios():
    """Two rollouts: the members' returns average PPO's exactly (20 = 20), so they are
    1.0 of PPO, while the mean of the per-rollout ratios the ES ranks on says 1.43
    (10/5 and 30/35): dividing by one noisy PPO run inflates it (Jensen)."""
    members, ppo = np.array([10.0, 30.0]), np.array([5.0, 35.0])
    assert np.mean(members / ppo) == pytest.approx(1.4286, abs=1e-4)
    assert score_of_means(members, ppo, random=0.0, floor=1.0) == pytest.approx(1.0)
    # any sign: Acrobot-like returns, random -500
    assert score_of_means(np.array([-300.0, -100.0]), np.array([-450.0, 50.0]), -500.0,
                          1.0) == pytest.approx(1.0)
    # PPO no better than random in these rollouts: the gap takes the floor
    assert score_of_means(np.array([20.0]), np.array([0.5]), 0.0, 2.0) == pytest.approx(10.0)


def test_random_policy_return_of_negative_and_continuous_envs():
    key = jax.random.key(0)
    acrobot = random_policy_return(envs.make(ACROBOT), key, num_envs=64)
    pendulum = random_policy_return(envs.make(PENDULUM), key, num_envs=64)
    assert -500.0 <= acrobot < -400.0, acrobot  # random Acrobot rarely swings up in 500 steps
    assert -1700.0 < pendulum < -900.0, pendulum  # 200 steps at costs up to 16.3


def test_negative_reference_is_refused_by_ppo_ratio_and_accepted_by_random_ppo():
    base = {"envs": [ACROBOT, CARTPOLE], "train": {ACROBOT: TINY, CARTPOLE: TINY}}
    with pytest.raises(DiscoveryError, match="normalization=random_ppo"):
        DiscoveryConfig.from_dict({**base, "reference_returns": {ACROBOT: -200.0}})
    config = DiscoveryConfig.from_dict({**base, "reference_returns": {ACROBOT: -200.0},
                                        "normalization": "random_ppo"})
    assert config.normalized


@pytest.mark.parametrize("block, message", [
    ({"learning_rat": {"low": 1e-4, "high": 1e-3}}, "did you mean learning_rate"),
    ({"learning_rate": {"low": 1e-3, "high": 1e-4}}, "low < high"),
    ({"learning_rate": {"low": 0.0, "high": 1e-4}}, "log scale needs low > 0"),
    ({"learning_rate": {"choices": [1e-4]}}, "takes {low, high"),
    ({"update_epochs": {"low": 1, "high": 4}}, "takes {choices"),
    ({"update_epochs": {"choices": [2.5]}}, "whole numbers"),
    ({"update_epochs": {"choices": []}}, "non-empty list"),
    ({"num_minibatches": {"choices": [3]}}, "cannot train"),
])
def test_bad_randomize_blocks_are_one_line(block, message):
    with pytest.raises(DiscoveryError, match=message) as err:
        DiscoveryConfig.from_dict({"envs": [CARTPOLE], "train": {CARTPOLE: TINY},
                                   "normalization": "random_ppo", "randomize": block})
    assert "\n" not in str(err.value)


def test_randomize_needs_random_ppo():
    with pytest.raises(DiscoveryError, match="needs normalization=random_ppo"):
        DiscoveryConfig.from_dict({"envs": [CARTPOLE], "train": {CARTPOLE: TINY},
                                   "randomize": {"learning_rate": {"low": 1e-4, "high": 1e-3}}})


def test_inner_settings_sample_ranges_relative_to_the_preset():
    ranges = parse_randomize({"learning_rate": {"low": 0.5, "high": 2.0, "relative": True},
                              "total_timesteps": {"choices": [0.5, 1.0], "relative": True},
                              "update_epochs": {"choices": [1, 2]}})
    inner = InnerSettings(ranges, {**TINY, "learning_rate": 1e-3}, CARTPOLE)
    assert [c["total_timesteps"] for c in inner.combos] == [1024, 1024, 2048, 2048]
    assert sorted({c.update_epochs for c in inner.configs}) == [1, 2]
    combo, values = inner.sample(jax.random.key(0), 512)
    lr = np.asarray(values["learning_rate"])
    assert lr.min() >= 0.5e-3 - 1e-9 and lr.max() <= 2e-3 + 1e-9
    # log-uniform: half the mass below the geometric mean of the range (1e-3)
    assert 0.4 < np.mean(lr < 1e-3) < 0.6
    assert set(np.asarray(combo).tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("sets, message", [
    ({"validation_envs": [CARTPOLE]}, "in both envs and validation_envs"),
    ({"validation_envs": [ACROBOT], "test_envs": [ACROBOT]}, "validation_envs and test_envs"),
    ({"test_envs": ["gymnax/CartPole-v2"]}, "unknown test env"),
    ({"heldout_envs": [ACROBOT], "test_envs": [ACROBOT]}, "must not be evaluated"),
])
def test_env_sets_must_be_disjoint_and_known(sets, message):
    train = {CARTPOLE: TINY, ACROBOT: TINY}
    with pytest.raises(DiscoveryError, match=message):
        DiscoveryConfig.from_dict({"envs": [CARTPOLE], "train": train, **sets})


def tiny_transfer(**changes) -> dict:
    """A PPO-family discovery on CartPole with the learning rate randomised per rollout,
    validated on Acrobot (negative returns). sigma 1e-10: every member's eps is the same
    float32, so the members differ only if their inner settings or keys do."""
    return {"envs": [CARTPOLE], "validation_envs": [ACROBOT], "test_envs": [PENDULUM],
            "drift": {"kind": "ppo"}, "population": 2, "generations": 2, "sigma": 1e-10,
            "normalization": "random_ppo", "rollouts_per_member": 2,
            "randomize": {"learning_rate": {"low": 0.25, "high": 4.0, "relative": True}},
            "inner": {**TINY, "learning_rate": 2.5e-3}, "inner_per_env": {ACROBOT: {
                "total_timesteps": 8192, "num_envs": 8}},
            "validation_every": 1, "validation_seeds": 2, "eval_every": 100,
            "reference_seeds": 2, **changes}


def discover(tmp_path, name: str, **changes) -> list[dict]:
    settings = tmp_path / f"{name}.yaml"
    settings.write_text(yaml.safe_dump(tiny_transfer(**changes)))
    assert main(["discover", "--config", str(settings), "--out", str(tmp_path / name),
                 "--no-progress"]) == 0
    return [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text()
            .splitlines()]


@pytest.mark.slow
def test_members_share_sampled_settings_and_test_envs_never_enter_selection(tmp_path):
    records = discover(tmp_path, "a")
    for record in records:
        # identical drifts + shared settings and keys: identical returns
        assert record["fitness_max"] == record["fitness_min"], record
        settings = record["inner_settings"][CARTPOLE]
        assert len(settings) == 2 and settings[0]["learning_rate"] != settings[1]["learning_rate"]
        assert all(0.25 * 2.5e-3 <= s["learning_rate"] <= 4 * 2.5e-3 for s in settings)
        assert len(record["ppo_return"][CARTPOLE]) == 2
        assert set(record["validation"]["envs"]) == {ACROBOT}
        # the quotable "x PPO" figure beside the ranked one, for every scored env
        assert record["env_score_of_means"].keys() == record["env_score_mean"].keys()
        assert np.isfinite(record["score_of_means"])
        # each env's rollouts alone (members, envs, rollouts); their env mean is the
        # rollout fitness the ranking-noise record uses, (rollouts, members)
        per_env = np.array(record["rollout_env_scores"])
        assert per_env.shape == (2, 1, 2)
        np.testing.assert_allclose(per_env.mean(axis=1).T, record["rollout_fitness"], rtol=1e-6)
    # generations draw new settings
    assert records[0]["inner_settings"] != records[1]["inner_settings"]
    # the test env is never built, trained on or logged
    config = DiscoveryConfig.from_dict(resolve_discovery_settings(tiny_transfer()))
    assert PENDULUM not in Discovery(config, {CARTPOLE: 1.0}, random_returns={
        CARTPOLE: 0.0, ACROBOT: 0.0}).trainers
    run = tmp_path / "a"
    assert PENDULUM not in (run / "metrics.jsonl").read_text()
    assert PENDULUM not in (run / "random_returns.json").read_text()
    # validation picked a snapshot, which is kept with every other validated one; the
    # start (generation 0, the initial mean) is validated first and is a candidate
    selected = json.loads((run / "drift_selected.json").read_text())
    start = json.loads((run / "snapshots" / "start-validation.json").read_text())
    scores = {0: start["score"], **{r["generation"]: r["validation"]["score"] for r in records}}
    assert selected["validation_score"] == max(scores.values())
    assert scores[selected["generation"]] == selected["validation_score"]
    assert sorted(p.name for p in (run / "snapshots").glob("*.json")) == [
        "generation-00000.json", "generation-00001.json", "generation-00002.json",
        "start-validation.json"]
    # a run validated before the start was a candidate gets it on --resume
    for name in ("generation-00000.json", "generation-00000.params.msgpack",
                 "start-validation.json"):
        (run / "snapshots" / name).unlink()
    assert main(["discover", "--resume", str(run), "--no-progress"]) == 0
    again = json.loads((run / "snapshots" / "start-validation.json").read_text())
    assert again == start
    assert json.loads((run / "drift_selected.json").read_text()) == selected
    # another test env changes nothing the run chose or logged
    other = discover(tmp_path, "b", test_envs=["gymnax/MountainCar-v0"])
    assert _no_time(other) == _no_time(records)
    _, a = load_drift(str(run / "drift_selected.json"))
    _, b = load_drift(str(tmp_path / "b" / "drift_selected.json"))
    assert jax.tree.all(jax.tree.map(lambda x, y: bool(np.all(np.asarray(x) == np.asarray(y))),
                                     a, b))
    # shipping records the three sets and the rule, and ships the selected snapshot
    assert main(["drifts", "--ship", str(run), "--name", "tiny-transfer", "--dest",
                 str(tmp_path / "shipped")]) == 0
    provenance = yaml.safe_load((tmp_path / "shipped" / "tiny-transfer" / "provenance.yaml")
                                .read_text())
    assert provenance["meta_envs"] == [CARTPOLE]
    assert provenance["validation_envs"] == [ACROBOT]
    assert provenance["test_envs"] == [PENDULUM]
    assert provenance["selected_generation"] == selected["generation"]
    assert "highest validation score" in provenance["selection"]


def _no_time(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_a_validation_env_where_ppo_finishes_no_episode_is_one_line(tmp_path, capsys):
    """MountainCarContinuous runs 999 steps an episode: 2,048 steps over 4 envs end none,
    so PPO has no return there to normalise with; one line says so, not a NaN warning."""
    mcc = "gymnax/MountainCarContinuous-v0"
    settings = tmp_path / "mcc.yaml"
    settings.write_text(yaml.safe_dump(tiny_transfer(
        validation_envs=[mcc], generations=1, inner_per_env={mcc: TINY})))
    assert main(["discover", "--config", str(settings), "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "finished no episode" in err and mcc in err, err


@pytest.mark.slow
def test_pooled_rollout_weighting_ranks_on_the_ratio_of_mean_returns(tmp_path):
    """The same members and trainings (same seed), scored two ways: `pooled` ranks each
    member on its mean return over PPO's mean (so the ranked fitness equals the quoted
    score_of_means), `per_rollout` on the mean of per-rollout ratios, which differs."""
    changes = {"sigma": 0.5, "generations": 1, "rollouts_per_member": 3, "validation_envs": []}
    pooled = discover(tmp_path, "pooled", rollout_weighting="pooled", **changes)[0]
    plain = discover(tmp_path, "plain", **changes)[0]
    assert pooled["env_return_mean"] == plain["env_return_mean"]  # the same trainings
    assert pooled["ppo_return"] == plain["ppo_return"]
    assert pooled["fitness_mean"] == pytest.approx(pooled["score_of_means"], rel=1e-5)
    assert plain["fitness_mean"] != pytest.approx(plain["score_of_means"], rel=1e-3)
    assert yaml.safe_load((tmp_path / "pooled" / "config.yaml").read_text())[
        "discovery"]["rollout_weighting"] == "pooled"


def test_pooled_rollout_weighting_without_randomize_is_refused():
    with pytest.raises(DiscoveryError, match="randomised inner settings only"):
        DiscoveryConfig.from_dict({"envs": [CARTPOLE], "train": {CARTPOLE: TINY},
                                   "rollout_weighting": "pooled"})
