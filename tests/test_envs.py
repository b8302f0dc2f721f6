"""The environment contract over gymnax and Brax, and the wrappers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from driftlab import envs
from driftlab.envs.brax_backend import BRAX_NAMES
from driftlab.envs.gymnax_backend import GYMNAX_IDS


def rollout(env, steps: int, key=None, action_fn=None):
    """Random-action rollout of a (vectorised) env; stacked outputs of `step`."""
    key = jax.random.key(0) if key is None else key
    obs, state = env.reset(key)
    sample = action_fn or env.action_space.sample
    num = obs.shape[0]

    def body(state, k):
        ka, ks = jax.random.split(k)
        action = jax.vmap(sample)(jax.random.split(ka, num))
        obs, state, reward, term, trunc, info = env.step(ks, state, action)
        return state, (obs, reward, term, trunc, info)

    return jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(key, steps)))(state)


def test_list_has_every_gymnax_and_brax_env():
    ids = envs.list_envs()
    assert len(ids) == len(GYMNAX_IDS) + len(BRAX_NAMES)
    for name in ("CartPole-v1", "Breakout-MinAtar", "Catch-bsuite", "FourRooms-misc"):
        assert f"gymnax/{name}" in ids
    for name in ("ant", "halfcheetah", "hopper", "humanoid", "humanoidstandup",
                 "inverted_pendulum", "inverted_double_pendulum", "pusher", "reacher",
                 "swimmer", "walker2d"):
        assert f"brax/{name}" in ids
    assert envs.list() == ids


@pytest.mark.parametrize("env_id", [f"gymnax/{n}" for n in GYMNAX_IDS])
def test_every_gymnax_env_steps(env_id):
    if env_id == "gymnax/MNISTBandit-bsuite":
        # Downloads MNIST when built; offline (as here and in CI) that is one clear error.
        try:
            env = envs.make(env_id)
        except ValueError as err:
            assert "could not load its data set" in str(err)
            return
    env = envs.make(env_id, episode_length=2)
    vec = envs.Vectorized(env, 2)
    _, (obs, reward, term, trunc, info) = rollout(vec, 7)
    assert obs.shape == (7, 2) + env.observation_shape
    assert reward.shape == term.shape == trunc.shape == (7, 2)
    assert info["final_obs"].shape == obs.shape
    assert obs.dtype == jnp.float32
    # The trainer relies on this: time limits come at least max_episode_steps apart.
    assert env.max_episode_steps == 2
    for column in np.asarray(trunc).T:
        assert (np.diff(np.flatnonzero(column)) >= env.max_episode_steps).all(), column


@pytest.mark.parametrize("name", BRAX_NAMES)
def test_every_brax_env_builds_with_a_cpu_backend(name):
    env = envs.make(f"brax/{name}")
    assert env.unwrapped.backend == ("generalized" if name == "swimmer" else "spring")
    assert isinstance(env.action_space, envs.Box)
    assert env.action_space.low == (-1.0,) * env.action_space.shape[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inverted_pendulum", "ant", "swimmer"])
def test_brax_env_steps_and_truncates(name):
    env = envs.make(f"brax/{name}", episode_length=4)
    _, (obs, reward, term, trunc, info) = rollout(envs.Vectorized(env, 2), 9)
    assert obs.shape == (9, 2) + env.observation_shape
    assert bool(jnp.all(jnp.isfinite(reward)))
    # Episodes that do not terminate are truncated at every 4th step.
    ended = np.asarray(term | trunc)
    assert ended[3].all() and ended[7].all()
    assert not np.asarray(trunc)[[0, 1, 2, 4, 5, 6]].any()


def test_unknown_env_suggests_closest():
    with pytest.raises(ValueError, match=r"unknown environment 'gymnax/Cartpole-v1' \(did you mean gymnax/CartPole-v1"):
        envs.make("gymnax/Cartpole-v1")
    with pytest.raises(ValueError, match=r"did you mean brax/ant"):
        envs.make("ant")
    with pytest.raises(ValueError, match="`backend` option"):
        envs.make("gymnax/CartPole-v1", backend="spring")
    with pytest.raises(ValueError, match="not available for brax/swimmer"):
        envs.make("brax/swimmer", backend="spring")


def test_truncation_is_kept_apart_from_termination():
    # Always pushing left, CartPole falls (terminates) after ~9 steps; a limit of 5 truncates first.
    env = envs.Vectorized(envs.make("gymnax/CartPole-v1", episode_length=5), 3)
    _, (obs, reward, term, trunc, info) = rollout(env, 10, action_fn=lambda k: jnp.int32(0))
    trunc, term = np.asarray(trunc), np.asarray(term)
    assert trunc[4].all() and trunc[9].all() and not term.any()
    assert not trunc[[0, 1, 2, 3, 5, 6, 7, 8]].any()
    # At the cut, obs is the next episode's first one, final_obs the last of the old one.
    final, nxt = np.asarray(info["final_obs"][4]), np.asarray(obs[4])
    assert np.abs(final - nxt).max() > 1e-3
    np.testing.assert_array_equal(info["final_obs"][3], obs[3])  # no cut: identical
    # Episode statistics: the finished episode's return is its 5 rewards of 1.
    np.testing.assert_array_equal(info["episode_return"][4], 5.0)
    np.testing.assert_array_equal(info["episode_length"][4], 5)
    assert np.asarray(info["episode_done"][4]).all()


def test_termination_without_truncation():
    env = envs.Vectorized(envs.make("gymnax/CartPole-v1"), 2)
    _, (_, reward, term, trunc, info) = rollout(env, 40, action_fn=lambda k: jnp.int32(0))
    term = np.asarray(term)
    assert term.any() and not np.asarray(trunc).any()
    first_end = int(np.argmax(term[:, 0]))
    assert info["episode_return"][first_end, 0] == first_end + 1


def test_normalize_observation_keeps_running_stats_in_state():
    base = envs.Vectorized(envs.make("gymnax/Pendulum-v1"), 64)
    env = envs.NormalizeObservation(base)
    state, (obs, *_rest) = rollout(env, 50)
    assert int(state.stats.count) > 64 * 50 - 1
    assert abs(float(obs[-10:].mean())) < 0.5
    assert 0.3 < float(obs[-10:].std()) < 2.0
    np.testing.assert_array_less(np.abs(np.asarray(obs)), 10.0 + 1e-6)


def test_normalize_and_scale_reward():
    base = envs.Vectorized(envs.make("gymnax/Pendulum-v1"), 16)
    _, (_, raw, *_r) = rollout(base, 30)
    _, (_, scaled, *_s) = rollout(envs.ScaleReward(base, 0.1), 30)
    np.testing.assert_allclose(scaled, 0.1 * raw, rtol=1e-6)
    state, (_, normed, *_n) = rollout(envs.NormalizeReward(base, 0.99), 30)
    ratio = np.asarray(raw / normed)
    # Divided by one running std per step, shared by all envs.
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(16, 1), rtol=1e-4)
    assert float(state.stats.var) > 1.0  # Pendulum returns vary by much more than 1


def test_clip_action_clips_into_bounds():
    seen = []

    class Recorder(envs.Wrapper):
        def step(self, key, state, action):
            seen.append(action)
            return self.env.step(key, state, action)

    env = envs.ClipAction(Recorder(envs.make("gymnax/Pendulum-v1")))
    _, state = env.reset(jax.random.key(0))
    env.step(jax.random.key(1), state, jnp.array([5.0]))
    env.step(jax.random.key(1), state, jnp.array([-7.0]))
    assert [float(a[0]) for a in seen] == [2.0, -2.0]


def test_reset_and_step_are_deterministic():
    env = envs.Vectorized(envs.make("gymnax/Breakout-MinAtar"), 4)
    a = rollout(env, 20, jax.random.key(3))
    b = rollout(env, 20, jax.random.key(3))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
