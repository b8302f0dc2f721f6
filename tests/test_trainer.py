"""The Mirror-Learning trainer: batching, determinism, chunking, GAE, CLI."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from driftlab import envs
from driftlab.algorithms import Hyperparams, TrainConfig, Trainer, make_drift
from driftlab.algorithms.advantages import Cuts, RolloutAdvantages, Transition
from driftlab.cli import main as cli_main

TINY = dict(total_timesteps=4 * 16 * 5, num_envs=4, num_steps=16, update_epochs=2,
            num_minibatches=2)


def tiny_trainer(env_id="gymnax/CartPole-v1", algo="dpo", **overrides):
    config = TrainConfig.from_dict({**TINY, **overrides})
    drift = make_drift(algo)
    return Trainer(envs.make(env_id), config, drift), drift


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_vmap_over_drift_params_and_seeds_matches_unbatched_calls():
    trainer, drift = tiny_trainer()
    drift_params = {"alpha": jnp.array([2.0, 0.5]), "beta": jnp.array([0.6, 0.2])}
    keys = jax.random.split(jax.random.key(7), 3)
    batched = jax.jit(jax.vmap(jax.vmap(trainer.train, in_axes=(0, None)), in_axes=(None, 0)))
    result = batched(keys, drift_params)
    assert result.metrics["episode_return"].shape == (2, 3, 5)
    single = jax.jit(trainer.train)
    for i in range(2):
        params_i = jax.tree.map(lambda x, i=i: x[i], drift_params)
        for j in range(3):
            one = single(keys[j], params_i)
            for name, value in one.metrics.items():
                np.testing.assert_allclose(result.metrics[name][i, j], value, rtol=2e-5,
                                           atol=1e-6, err_msg=name)
            for x, y in zip(jax.tree.leaves(one.params),
                            jax.tree.leaves(jax.tree.map(lambda p, i=i, j=j: p[i, j],
                                                         result.params)), strict=True):
                np.testing.assert_allclose(y, x, rtol=2e-5, atol=1e-6)


def test_hyperparameters_are_vmappable_leaves():
    trainer, drift = tiny_trainer(algo="ppo")
    lrs = jnp.array([1e-4, 1e-3, 1e-2])
    hparams = jax.tree.map(lambda x: jnp.full(3, x), trainer.config.hyperparams)
    hparams = hparams.replace(learning_rate=lrs)
    result = jax.jit(jax.vmap(trainer.train, in_axes=(None, None, 0)))(
        jax.random.key(0), drift.default_params, hparams)
    kl = np.asarray(result.metrics["approx_kl"])
    assert kl.shape == (3, 5)
    # A larger step size moves the policy further from the data-collecting one.
    assert kl[0].mean() < kl[1].mean() < kl[2].mean()


def test_same_seed_same_result_bitwise():
    trainer, drift = tiny_trainer(algo="ppo")
    train = jax.jit(trainer.train)
    a = train(jax.random.key(3), drift.default_params)
    b = train(jax.random.key(3), drift.default_params)
    assert_trees_equal(a, b)
    c = train(jax.random.key(4), drift.default_params)
    assert not np.array_equal(a.metrics["policy_loss"], c.metrics["policy_loss"])


def test_chunked_run_equals_one_scan():
    trainer, drift = tiny_trainer(algo="ppo")
    params = drift.default_params
    whole = jax.jit(trainer.train)(jax.random.key(1), params)
    state = trainer.init(jax.random.key(1))
    state, first = jax.jit(lambda s: trainer.run(s, params, None, 3))(state)
    state, second = jax.jit(lambda s: trainer.run(s, params, None, 2))(state)
    chunked = {k: jnp.concatenate([first[k], second[k]]) for k in first}
    # Scans of 3 + 2 updates and one of 5 are different XLA programs, whose fusions may
    # round differently (seen: 1e-7 absolute on a fresh compile cache); the same
    # program is bitwise reproducible (test_same_seed_same_result_bitwise).
    for whole_leaf, chunk_leaf in zip(jax.tree.leaves((whole.metrics, whole.params)),
                                      jax.tree.leaves((chunked, state.params)), strict=True):
        np.testing.assert_allclose(chunk_leaf, whole_leaf, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("env_id, continuous", [("gymnax/Pendulum-v1", "clip"),
                                                ("gymnax/Pendulum-v1", "tanh"),
                                                ("gymnax/Breakout-MinAtar", "clip")])
def test_action_spaces_train_with_finite_metrics(env_id, continuous):
    trainer, drift = tiny_trainer(env_id, algo="ppo", continuous=continuous,
                                  normalize_obs=True, normalize_reward=True)
    result = jax.jit(trainer.train)(jax.random.key(0), drift.default_params)
    for name, value in result.metrics.items():
        if name != "episode_return":  # NaN until an episode ends: Pendulum's take 200 steps
            assert np.isfinite(np.asarray(value)).all(), name
    assert result.obs_stats is not None and result.obs_stats.mean.shape == (
        trainer.obs_dim,) if env_id.endswith("v1") else True


def record_cuts(trainer, truncated, final_obs):
    """The trainer's buffer of truncation observations, filled step by step."""
    steps, n = truncated.shape
    cuts = Cuts.empty(steps, trainer.env.max_episode_steps, n, final_obs.shape[-1])
    for t in range(steps):
        cuts = cuts.record(jnp.asarray(t), truncated[t], final_obs[t])
    return cuts


def test_gae_bootstraps_truncation_but_not_termination():
    trainer, _ = tiny_trainer()
    hp = Hyperparams(gamma=0.5, gae_lambda=1.0)

    def critic(params, obs):  # the value is the first observation feature
        return obs[..., 0]

    steps, n = 3, 3
    obs = jnp.array([[1.0], [2.0], [3.0]])[:, None, :].repeat(n, 1)  # V(s_t) = t + 1
    final_obs = jnp.full((steps, n, 1), 10.0)  # V(pre-reset obs) = 10
    term = jnp.zeros((steps, n), bool).at[1, 1].set(True)
    trunc = jnp.zeros((steps, n), bool).at[1, 2].set(True)
    reward = jnp.ones((steps, n))
    zeros = jnp.zeros((steps, n))
    traj = Transition(obs, zeros, zeros, reward, term, trunc, zeros, zeros)
    last_obs = jnp.full((n, 1), 4.0)  # V = 4 after the last step
    cuts = record_cuts(trainer, trunc, final_obs)
    values, adv, targets = RolloutAdvantages(trainer.config, critic).gae(None, traj, last_obs,
                                                                         cuts, hp)
    # Env 0, no cut: discounted returns bootstrapped with V = 4 at the end.
    ret0 = [1 + 0.5 * (1 + 0.5 * (1 + 0.5 * 4)), 1 + 0.5 * (1 + 0.5 * 4), 1 + 0.5 * 4]
    # Env 1 terminates at t = 1: no bootstrap there. Env 2 is truncated at t = 1:
    # bootstrap with V(final_obs) = 10, not with the next episode's V(s_2) = 3.
    ret1 = [1 + 0.5 * 1, 1.0, 1 + 0.5 * 4]
    ret2 = [1 + 0.5 * (1 + 0.5 * 10), 1 + 0.5 * 10, 1 + 0.5 * 4]
    np.testing.assert_allclose(targets, np.array([ret0, ret1, ret2]).T, rtol=1e-6)
    np.testing.assert_allclose(adv, targets - values, rtol=1e-6)


def test_gae_bootstraps_every_truncation_when_limits_are_short():
    # With a 2-step limit an env can be cut ceil(5 / 2) = 3 times in a 5-step rollout:
    # the trainer keeps 3 final observations per env (env 1 is cut only twice).
    env = envs.make("gymnax/CartPole-v1", episode_length=2)
    trainer = Trainer(env, TrainConfig.from_dict(TINY), make_drift("ppo"))
    hp = Hyperparams(gamma=0.5, gae_lambda=1.0)
    steps, n = 5, 2
    obs = jnp.arange(1.0, steps + 1)[:, None, None].repeat(n, 1)  # V(s_t) = t + 1
    final_obs = jnp.arange(10.0, 10 + steps)[:, None, None].repeat(n, 1)  # V = 10 + t
    trunc = jnp.zeros((steps, n), bool).at[jnp.array([0, 2, 4]), 0].set(True)
    trunc = trunc.at[jnp.array([1, 3]), 1].set(True)
    zeros = jnp.zeros((steps, n))
    traj = Transition(obs, zeros, zeros, jnp.ones((steps, n)), jnp.zeros((steps, n), bool),
                      trunc, zeros, zeros)
    cuts = record_cuts(trainer, trunc, final_obs)
    assert cuts.obs.shape == (3, n, 1)
    gae = RolloutAdvantages(trainer.config, lambda params, o: o[..., 0]).gae
    _, _, targets = gae(None, traj, jnp.full((n, 1), 6.0), cuts, hp)
    expected = np.zeros((steps, n))
    for env_index in range(n):
        following = 6.0  # return after the last step: V(last obs)
        for t in reversed(range(steps)):
            bootstrap = 10.0 + t if trunc[t, env_index] else following
            following = expected[t, env_index] = 1.0 + 0.5 * bootstrap
    np.testing.assert_allclose(targets, expected, rtol=1e-6)


# ---- command line -------------------------------------------------------------

def run_cli(capsys, *argv):
    code = cli_main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_cli_writes_a_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, "train", "--algo", "dpo", "--env", "gymnax/CartPole-v1",
                              "--seeds", "2", "--timesteps", "4096", "--out", str(out),
                              "--set", "num_envs=4", "--set", "num_steps=32", "--no-progress")
    assert code == 0
    assert "final return" in stdout and str(out) in stdout
    for name in ("config.yaml", "metrics.jsonl", "params.msgpack", "learning_curve.png",
                 "summary.json"):
        assert (out / name).is_file(), name
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["update"] for x in lines] == list(range(1, 33))
    assert len(lines[-1]["episode_return_per_seed"]) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["final_return_per_seed"]) == 2
    # The same seed reproduces the same numbers through the CLI.
    code, *_ = run_cli(capsys, "train", "--algo", "dpo", "--env", "gymnax/CartPole-v1",
                       "--seeds", "2", "--timesteps", "4096", "--out", str(tmp_path / "again"),
                       "--set", "num_envs=4", "--set", "num_steps=32", "--no-progress")
    again = (tmp_path / "again" / "metrics.jsonl").read_text()
    assert again == (out / "metrics.jsonl").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--algo", "ppo", "--env", "gymnax/CartPol-v1"], "did you mean gymnax/CartPole-v1"),
    (["--algo", "ppx", "--env", "gymnax/CartPole-v1"], "unknown drift/algorithm 'ppx'"),
    (["--algo", "ppo", "--env", "gymnax/CartPole-v1", "--set", "num_minibatches=3"],
     "not divisible by num_minibatches=3; change num_minibatches"),
    (["--algo", "ppo", "--env", "gymnax/CartPole-v1", "--set", "learning_rate=0"],
     "learning_rate must be a positive number"),
    (["--algo", "ppo", "--env", "gymnax/CartPole-v1", "--set", "learning_rat=1e-3"],
     "did you mean 'learning_rate'"),
    (["--algo", "lpo", "--env", "gymnax/CartPole-v1", "--drift", "/nonexistent/drift"],
     "does not exist"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    code, _, err = run_cli(capsys, "train", *argv, "--out", str(tmp_path / "x"), "--no-progress")
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_orthogonal_init_is_orthogonal():
    from driftlab.algorithms.networks import orthogonal

    for shape in [(4, 64), (400, 64), (64, 3), (256, 256)]:
        w = np.asarray(orthogonal(2.0)(jax.random.key(0), shape))
        gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
        np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-5)


def test_vmapped_init_of_deep_networks_does_not_hang():
    """Regression: flax's QR-based orthogonal init under vmap deadlocked XLA's CPU
    runtime (jax 0.10, 2 cores) for these sizes. Run in a subprocess with a timeout
    so a regression fails instead of hanging the suite."""
    import subprocess
    import sys

    code = (
        "import jax, envs\n"
        "from driftlab.algorithms import TrainConfig, Trainer, make_drift\n"
        "cfg = TrainConfig(total_timesteps=512, num_envs=4, num_steps=128, "
        "actor_hidden=(32, 32, 32, 32), critic_hidden=(256,) * 5, activation='swish')\n"
        "t = Trainer(envs.make('gymnax/Pendulum-v1'), cfg, make_drift('ppo'))\n"
        "s = jax.jit(jax.vmap(t.init))(jax.random.split(jax.random.key(0), 2))\n"
        "jax.block_until_ready(s); print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
