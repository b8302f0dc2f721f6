"""Brax mode (configs/train/brax.yaml) against Brax's own PPO loss.

On identical parameters and an identical batch of unrolls, driftlab's loss with
the PPO drift (eps 0.3) and its gradients equal
`brax.training.agents.ppo.losses.compute_ppo_loss` (the inner loss of the LPO/DPO
paper's Brax runs) to float rounding; with DPO or LPO the loss differs from Brax's
only by the drift term. Plus: the gymnax loop is bitwise what it was before the
Brax mode existed, the unrolls are cut as Brax cuts them, and (slow) the Brax mode
learns on a CPU budget.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from driftlab import envs
from driftlab.algorithms import TrainConfig, Trainer, make_drift
from driftlab.algorithms.advantages import Transition, Unrolls
from driftlab.presets import train_preset
from driftlab.training import resolve_settings

ENV_ID = "brax/ant"  # 27-dim observations, 8-dim actions
UNROLLS, LENGTH = 24, 5  # a minibatch: Brax's batch_size x unroll_length
OBS_CLIP = 5.0
LOSS_RTOL = 1e-6
GRAD_TOL = 2e-6  # max |g_driftlab - g_brax| / max |g_brax|, per parameter array (seen: 3e-7)


@functools.lru_cache(maxsize=1)
def _brax_setup():
    """(trainer, ppo_networks): driftlab's Trainer built from the brax/ant preset and
    Brax's networks of the same shape, observations clipped to +-5 (old Brax's
    normaliser clip; the test's observations are already normalised)."""
    from brax.training.agents.ppo import networks as ppo_networks
    from flax import linen

    config = TrainConfig.from_dict(resolve_settings(ENV_ID))
    trainer = Trainer(envs.make(ENV_ID, **config.env_options), config, make_drift("ppo", eps=0.3))
    nets = ppo_networks.make_ppo_networks(
        trainer.obs_dim, trainer.env.action_space.shape[0],
        preprocess_observations_fn=lambda obs, _: jnp.clip(obs, -OBS_CLIP, OBS_CLIP),
        policy_hidden_layer_sizes=config.actor_hidden,
        value_hidden_layer_sizes=config.critic_hidden, activation=linen.swish)
    return trainer, nets


def _to_brax(params):
    """driftlab's {"actor", "critic"} (flax MLPs, layers Dense_i) -> Brax's
    PPONetworkParams (networks.MLP, layers hidden_i)."""
    from brax.training.agents.ppo.losses import PPONetworkParams

    def rename(tree):
        return {"params": {name.replace("Dense_", "hidden_"): layer
                           for name, layer in tree["params"].items()}}

    return PPONetworkParams(policy=rename(params["actor"]), value=rename(params["critic"]))


def _from_brax(grads):
    def rename(tree):
        return {"params": {name.replace("hidden_", "Dense_"): layer
                           for name, layer in tree["params"].items()}}

    return {"actor": rename(grads.policy), "critic": rename(grads.value)}


def _batch(trainer, key):
    """Parameters, a perturbed behaviour policy's unrolls (actions sampled from it,
    with terminations, truncations and observations beyond the clip), as driftlab's
    `Unrolls` and as Brax's `Transition` (leading axes [B, T])."""
    from brax.training import types

    k_params, k_behave, k_obs, k_act, k_rew, k_term, k_trunc = jax.random.split(key, 7)
    state = trainer.init(k_params)
    params = state.params
    noise = jax.random.split(k_behave, len(jax.tree.leaves(params["actor"])))
    behaviour = jax.tree.unflatten(
        jax.tree.structure(params["actor"]),
        [p + 0.05 * jax.random.normal(k, p.shape) for p, k in
         zip(jax.tree.leaves(params["actor"]), noise, strict=True)])
    obs_all = 2.0 * jax.random.normal(k_obs, (UNROLLS, LENGTH + 1, trainer.obs_dim))
    obs, next_obs = obs_all[:, :-1], obs_all[:, 1:]
    flat = obs.reshape(-1, trainer.obs_dim)
    raw, log_prob = trainer.policy.sample(behaviour, k_act, flat)
    raw = raw.reshape(UNROLLS, LENGTH, -1)
    log_prob = log_prob.reshape(UNROLLS, LENGTH)
    reward = jax.random.normal(k_rew, (UNROLLS, LENGTH))
    terminated = jax.random.uniform(k_term, (UNROLLS, LENGTH)) < 0.08
    truncated = (jax.random.uniform(k_trunc, (UNROLLS, LENGTH)) < 0.08) & ~terminated
    scale = trainer.config.hyperparams.reward_scale
    unrolls = Unrolls(obs, raw, log_prob, reward * scale, terminated, truncated, next_obs[:, -1])
    done = (terminated | truncated).astype(jnp.float32)
    transition = types.Transition(
        observation=obs, action=jnp.tanh(raw), reward=reward, discount=1.0 - done,
        next_observation=next_obs,
        extras={"policy_extras": {"raw_action": raw, "log_prob": log_prob,
                                  "distribution_params": trainer.policy.network.apply(
                                      behaviour, jnp.clip(obs, -OBS_CLIP, OBS_CLIP))},
                "state_extras": {"truncation": truncated.astype(jnp.float32)}})
    return params, unrolls, transition


def _brax_loss(trainer, nets):
    from brax.training.agents.ppo import losses

    hp = trainer.config.hyperparams
    return functools.partial(
        losses.compute_ppo_loss, normalizer_params=None, ppo_network=nets,
        entropy_cost=hp.ent_coef, discounting=hp.gamma, reward_scaling=hp.reward_scale,
        gae_lambda=hp.gae_lambda, clipping_epsilon=0.3, normalize_advantage=True,
        vf_coefficient=hp.vf_coef)


def _ratio_and_advantage(trainer, nets, brax_params, data):
    """r and the normalised advantage, time-major, from Brax's own pieces (its
    distribution and compute_gae), as compute_ppo_loss computes them."""
    from brax.training.agents.ppo import losses

    hp = trainer.config.hyperparams
    data = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), data)
    logits = nets.policy_network.apply(None, brax_params.policy, data.observation)
    baseline = nets.value_network.apply(None, brax_params.value, data.observation)
    bootstrap = nets.value_network.apply(None, brax_params.value, data.next_observation[-1])
    truncation = data.extras["state_extras"]["truncation"]
    _, adv = losses.compute_gae(
        truncation=truncation, termination=(1 - data.discount) * (1 - truncation),
        rewards=data.reward * hp.reward_scale, values=baseline, bootstrap_value=bootstrap,
        lambda_=hp.gae_lambda, discount=hp.gamma)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    log_prob = nets.parametric_action_distribution.log_prob(
        logits, data.extras["policy_extras"]["raw_action"])
    log_ratio = log_prob - data.extras["policy_extras"]["log_prob"]
    return jnp.exp(log_ratio), log_ratio, adv


def _driftlab_loss(trainer, drift):
    hp = trainer.config.hyperparams

    def loss(params, unrolls, drift_params, key):
        probe = Trainer(trainer.env, trainer.config, drift)
        return probe.loss(params, unrolls, drift_params, hp, jnp.float32(0.3), key)

    return loss


def _assert_grads_close(ours, reference, tol=GRAD_TOL):
    worst = 0.0
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(ours), jax.tree.leaves(reference),
                            strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, path
        scale = max(float(np.abs(b).max()), 1e-12)
        error = float(np.abs(a - b).max()) / scale
        worst = max(worst, error)
        assert error < tol, f"{jax.tree_util.keystr(path)}: relative error {error:.2e}"
    return worst


# ---- the parity tests ----------------------------------------------------------

def test_brax_preset_uses_the_brax_mechanics():
    config = TrainConfig.from_dict(resolve_settings("brax/ant"))
    assert (config.advantages, config.unroll_length, config.continuous, config.init,
            config.obs_clip, config.budget, config.adam_eps) == (
        "unroll", 5, "brax_tanh", "lecun_uniform", 5.0, "brax", 1e-8)
    # Brax counts updates as ceil(timesteps / (batch x action_repeat)): 3e7 / 163840.
    assert config.num_updates == 184
    reacher = TrainConfig.from_dict(resolve_settings("brax/reacher"))
    assert reacher.env_options == {"episode_length": 250, "action_repeat": 4}
    assert reacher.unroll_length == 50 and reacher.num_updates == 62  # 1e8 / (2048*200*4)
    for env_id, unroll in [("brax/humanoid", 10), ("brax/walker2d", 20),
                           ("brax/halfcheetah", 20), ("brax/hopper", 5)]:
        assert TrainConfig.from_dict(resolve_settings(env_id)).unroll_length == unroll, env_id


def test_brax_preset_gives_ppo_the_papers_clip_eps():
    """PPO's eps is 0.3 on brax/* (dpo/brax_drift.py); other algorithms, a discovery's
    inner runs and an explicit drift.eps are untouched by it."""
    assert train_preset("brax/ant")["drift_by_algo"] == {"ppo": {"eps": 0.3}}
    assert resolve_settings("brax/ant", algo="ppo")["drift"] == {"eps": 0.3}
    assert "drift" not in resolve_settings("brax/ant", algo="dpo")
    assert "drift_by_algo" not in resolve_settings("brax/ant")
    ours = resolve_settings("brax/ant", overrides={"drift": {"eps": 0.2}}, algo="ppo")
    assert ours["drift"] == {"eps": 0.2}
    from driftlab.training import build

    *_, params = build("brax/inverted_pendulum", "ppo",
                       resolve_settings("brax/inverted_pendulum", algo="ppo"))
    assert float(params["eps"]) == pytest.approx(0.3)
    assert "drift" not in resolve_settings("gymnax/CartPole-v1", algo="ppo")


def test_drift_by_algo_must_map_algorithms_to_constants():
    from driftlab.errors import DriftlabError

    for bad in ({"ppo": 0.3}, [0.3], "eps"):
        with pytest.raises(DriftlabError, match="drift_by_algo must map"):
            resolve_settings("gymnax/CartPole-v1", overrides={"drift_by_algo": bad}, algo="ppo")


def test_policy_samples_and_log_probs_match_brax():
    trainer, nets = _brax_setup()
    params, unrolls, _ = _batch(trainer, jax.random.key(0))
    brax_params = _to_brax(params)
    obs = unrolls.obs[:, 0]
    key = jax.random.key(9)
    raw, log_prob = trainer.policy.sample(params["actor"], key, obs)
    logits = nets.policy_network.apply(None, brax_params.policy, obs)
    dist = nets.parametric_action_distribution
    np.testing.assert_allclose(raw, dist.sample_no_postprocessing(logits, key), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(log_prob, dist.log_prob(logits, raw), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(trainer.policy.to_env_action(raw), dist.postprocess(raw),
                               atol=1e-6)
    _, entropy = trainer.policy.evaluate(params["actor"], obs, raw, key)
    np.testing.assert_allclose(entropy, dist.entropy(logits, key), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_ppo_loss_and_gradients_match_brax_compute_ppo_loss(seed):
    trainer, nets = _brax_setup()
    params, unrolls, data = _batch(trainer, jax.random.key(seed))
    key = jax.random.key(100 + seed)
    brax_loss = _brax_loss(trainer, nets)
    (ref, ref_metrics), ref_grads = jax.value_and_grad(brax_loss, has_aux=True)(
        _to_brax(params), data=data, rng=key)
    ours_fn = _driftlab_loss(trainer, make_drift("ppo", eps=0.3))
    (ours, aux), grads = jax.value_and_grad(ours_fn, has_aux=True)(
        params, unrolls, {"eps": jnp.float32(0.3)}, key)
    hp = trainer.config.hyperparams
    np.testing.assert_allclose(ours, ref, rtol=LOSS_RTOL)
    np.testing.assert_allclose(aux["policy_loss"], ref_metrics["policy_loss"], rtol=LOSS_RTOL,
                               atol=1e-7)
    np.testing.assert_allclose(hp.vf_coef * aux["value_loss"], ref_metrics["v_loss"],
                               rtol=LOSS_RTOL)
    np.testing.assert_allclose(-hp.ent_coef * aux["entropy"], ref_metrics["entropy_loss"],
                               rtol=LOSS_RTOL)
    # The batch exercises the clip (ratios beyond 1 +- 0.3), truncation and termination.
    ratio, _, _ = _ratio_and_advantage(trainer, nets, _to_brax(params), data)
    assert float(aux["drift_active_frac"]) > 0.02
    assert float(jnp.mean(jnp.abs(ratio - 1) > 0.3)) > 0.02
    _assert_grads_close(grads, _from_brax(ref_grads))


@pytest.mark.parametrize("algo", ["dpo", "lpo", "lpo-ppo-init"])
def test_dpo_and_lpo_losses_differ_from_brax_only_by_the_drift(algo):
    """loss_D = brax_loss(eps 0.3) + mean(D(r, A)) - mean(D_ppo,0.3(r, A)), value
    and gradient, with r and A computed by Brax's own distribution and GAE."""
    trainer, nets = _brax_setup()
    params, unrolls, data = _batch(trainer, jax.random.key(3))
    key = jax.random.key(7)
    if algo == "dpo":
        drift = make_drift("dpo")
        drift_params = drift.default_params
    else:
        drift = make_drift("lpo", ppo_init=algo.endswith("ppo-init"))
        shapes = drift.default_params
        keys = jax.random.split(jax.random.key(11), len(shapes))
        drift_params = {name: 0.5 * jax.random.normal(k, shapes[name].shape)
                        for k, name in zip(keys, sorted(shapes), strict=True)}
    ppo = make_drift("ppo", eps=0.3)
    brax_loss = _brax_loss(trainer, nets)

    def reference(brax_params):
        loss, _ = brax_loss(brax_params, data=data, rng=key)
        ratio, log_ratio, adv = _ratio_and_advantage(trainer, nets, brax_params, data)
        term = drift.fn(drift_params, ratio, log_ratio, adv, jnp.float32(0.3))
        ppo_term = ppo.fn(ppo.default_params, ratio, log_ratio, adv, jnp.float32(0.3))
        return loss + jnp.mean(term) - jnp.mean(ppo_term), jnp.mean(term)

    (ref, ref_drift), ref_grads = jax.value_and_grad(reference, has_aux=True)(_to_brax(params))
    (ours, aux), grads = jax.value_and_grad(_driftlab_loss(trainer, drift), has_aux=True)(
        params, unrolls, drift_params, key)
    assert float(ref_drift) > 1e-4  # the drift term is really there
    np.testing.assert_allclose(aux["drift"], ref_drift, rtol=1e-5)
    np.testing.assert_allclose(ours, ref, rtol=LOSS_RTOL)
    _assert_grads_close(grads, _from_brax(ref_grads))


def test_unrolls_are_cut_as_brax_cuts_them():
    """Brax collects `num_steps / L` unrolls of L steps from every env and orders
    them (unroll, env); each unroll bootstraps from the observation after it."""
    config = TrainConfig.from_dict({**resolve_settings("brax/ant"), "num_envs": 3, "num_steps": 10,
                                    "unroll_length": 5, "num_minibatches": 2})
    trainer = Trainer(envs.make(ENV_ID), config, make_drift("ppo"))
    steps, num_envs = 10, 3
    code = (jnp.arange(steps)[:, None] * 10 + jnp.arange(num_envs)[None]).astype(jnp.float32)
    obs = jnp.broadcast_to(code[..., None], (steps, num_envs, 2))
    zeros = jnp.zeros((steps, num_envs))
    traj = Transition(obs, code[..., None], code, code, zeros > 0, zeros > 0, zeros, zeros > 0)
    last = jnp.full((num_envs, 2), 99.0)
    unrolls = trainer.advantages.unrolls(traj, last)
    assert unrolls.obs.shape == (6, 5, 2) and unrolls.next_obs.shape == (6, 2)
    # Brax: scan over unrolls -> (count, L, E) -> swapaxes(1, 2) -> reshape(count * E, L)
    expected = jnp.swapaxes(code.reshape(2, 5, 3), 1, 2).reshape(6, 5)
    np.testing.assert_array_equal(unrolls.log_prob, expected)
    np.testing.assert_array_equal(unrolls.obs[..., 0], expected)
    np.testing.assert_array_equal(unrolls.next_obs[:, 0], [50, 51, 52, 99, 99, 99])


# ---- the gymnax loop is untouched ------------------------------------------------

TINY = dict(total_timesteps=4 * 16 * 5, num_envs=4, num_steps=16, update_epochs=2,
            num_minibatches=2)
# Metrics of these tiny runs, computed with the code before the Brax mode existed
# (commit 00b6ca9, one 2-core CPU, jax 0.10): float.hex of the float32 values.
# XLA compiles for the host CPU's instruction set, so another CPU reproduces them only
# to within its rounding. Measured (issue 17) by rerunning these runs on one machine
# under XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 / AVX / AVX2 / none, the largest deviations
# from the values below were: policy_loss 1.6e-7 absolute, approx_kl 1.9e-9 absolute,
# value_loss 1.8e-6 relative, entropy 0. The tolerances are 50-60x those: far beyond
# any CPU's rounding over 5 tiny updates, and far below what a change to the loop does
# (a changed minibatch order, advantage or loss moves value_loss by >1e-3 relative).
BEFORE_TOLERANCE = {"policy_loss": {"atol": 1e-5, "rtol": 0.0},
                    "approx_kl": {"atol": 1e-7, "rtol": 0.0},
                    "value_loss": {"atol": 0.0, "rtol": 1e-4},
                    "entropy": {"atol": 0.0, "rtol": 1e-5}}
BEFORE = {
    ("gymnax/CartPole-v1", "dpo"): {
        "policy_loss": ["-0x1.106e4p-10", "-0x1.2da3p-13", "-0x1.46d14p-12", "-0x1.f95cp-15",
                        "-0x1.21238p-14"],
        "value_loss": ["0x1.5d68d8p+4", "0x1.1849a4p+4", "0x1.48489p+4", "0x1.9dc69cp+3",
                       "0x1.73c378p+4"],
        "entropy": ["0x1.62e36ap-1", "0x1.62dc2cp-1", "0x1.62d4e8p-1", "0x1.62cd88p-1",
                    "0x1.62c34cp-1"],
        "approx_kl": ["0x1.39d8p-17", "0x1.b12p-19", "0x1.0eep-19", "0x1.bfp-21", "0x1.49p-22"],
    },
    ("gymnax/Pendulum-v1", "ppo"): {
        "policy_loss": ["-0x1.0869p-15", "-0x1.406p-13", "0x1.64aep-13", "-0x1.2278p-15",
                        "-0x1.68b08p-14"],
        "value_loss": ["0x1.88f4dcp+10", "0x1.745becp+9", "0x1.53826cp+10", "0x1.13c744p+10",
                       "0x1.9ddd7ap+9"],
        "entropy": ["0x1.6b57d2p+0", "0x1.6b932p+0", "0x1.6bb966p+0", "0x1.6bc82p+0",
                    "0x1.6bd16cp+0"],
        "approx_kl": ["0x1.9bap-19", "0x1.328p-21", "0x1.fd8p-22", "0x1.48p-25", "0x1.5ep-24"],
    },
}


@pytest.mark.parametrize("env_id, algo", list(BEFORE))
def test_gymnax_loop_is_what_it_was(env_id, algo):
    extra = {"continuous": "tanh", "normalize_obs": True} if "Pendulum" in env_id else {}
    config = TrainConfig.from_dict({**TINY, **extra})
    assert (config.advantages, config.init, config.obs_clip, config.budget) == (
        "rollout", "orthogonal", None, "floor")
    drift = make_drift(algo)
    result = jax.jit(Trainer(envs.make(env_id), config, drift).train)(
        jax.random.key(3), drift.default_params)
    for name, values in BEFORE[(env_id, algo)].items():
        np.testing.assert_allclose(np.asarray(result.metrics[name], np.float64),
                                   [float.fromhex(v) for v in values],
                                   err_msg=name, **BEFORE_TOLERANCE[name])


def test_brax_mode_trains_with_finite_metrics():
    config = TrainConfig.from_dict({
        **resolve_settings("brax/inverted_pendulum"), "total_timesteps": 3 * 16 * 20,
        "num_envs": 16, "num_steps": 20, "num_minibatches": 4, "update_epochs": 2,
        "actor_hidden": [16, 16], "critic_hidden": [16, 16],
        "env_options": {"episode_length": 30}})
    for algo in ("ppo", "lpo"):
        drift = make_drift(algo, **({"ppo_init": True} if algo == "lpo" else {}))
        trainer = Trainer(envs.make("brax/inverted_pendulum", **config.env_options), config,
                          drift)
        result = jax.jit(trainer.train)(jax.random.key(0), drift.default_params)
        assert result.metrics["policy_loss"].shape == (3,)
        for name, value in result.metrics.items():
            assert np.all(np.isfinite(np.asarray(value))), (algo, name)
        assert float(result.metrics["episodes_finished"].sum()) > 0


def test_brax_mode_settings_are_checked():
    from driftlab.algorithms.config import ConfigError

    base = {**resolve_settings("brax/ant"), "num_envs": 4, "num_steps": 12, "num_minibatches": 2}
    with pytest.raises(ConfigError, match="multiple of unroll_length"):
        TrainConfig.from_dict({**base, "unroll_length": 5})
    with pytest.raises(ConfigError, match="not divisible by num_minibatches"):
        TrainConfig.from_dict({**base, "unroll_length": 4, "num_minibatches": 8})
    with pytest.raises(ConfigError, match="clip_value_loss"):
        TrainConfig.from_dict({**base, "unroll_length": 4, "clip_value_loss": True})
    with pytest.raises(ConfigError, match="advantages must be one of"):
        TrainConfig.from_dict({**base, "unroll_length": 4, "advantages": "gae"})


# ---- the Brax mode learns on a CPU budget -----------------------------------------

# brax/inverted_pendulum's preset (Brax mode, PPO eps 0.3, reward scale 10, gamma 0.97,
# entropy 1e-2, lr 3e-4, unrolls of 5, 2e6 steps) at a CPU size: 64 envs x 80 steps per
# update (1024 unrolls, 8 minibatches of 128, 4 epochs), critic 2x128 instead of 5x256;
# 4 seeds, statistic: the mean of their final returns (last 10% of updates).
# Bar set from a measured distribution (issue 17; tests/calibration/): 32 other seeds
# gave final returns from 98 to 1000, mean 537, median 449 (3613 s on the 2-core CPU,
# shared), so this CPU-sized Brax mode learns, unevenly. Over 100,000 bootstrap sets of
# 4 of those seeds the mean's 1% quantile is 243 and its 0.1% quantile 175; the bar,
# 220, passes 99.5% of seed sets and is ten times the random policy's 23.5. The earlier
# bar, 800, was set from one draw of 4 seeds (827) and passes 3% of seed sets.
BRAX_MODE_BAR = 220.0
BRAX_CPU = {"num_envs": 64, "num_steps": 80, "num_minibatches": 8, "update_epochs": 4,
            "critic_hidden": [128, 128],
            # The normaliser this bar was measured with (per step); the preset's own, per
            # update as Brax, is measured separately (tests/test_obs_norm.py checks it).
            "obs_norm_update": "step"}
BRAX_CPU_TIMESTEPS = 2_000_000


def train_brax_cpu(overrides: dict, eps: float, seeds: int = 4,
                   keys: jax.Array | None = None) -> np.ndarray:
    """Final return per seed (mean of the last 10% of updates) of PPO with clip `eps`."""
    from driftlab.algorithms.evaluation import final_return
    from driftlab.training import build

    settings = resolve_settings("brax/inverted_pendulum", overrides={**BRAX_CPU, **overrides},
                                timesteps=BRAX_CPU_TIMESTEPS)
    env, config, _, _ = build("brax/inverted_pendulum", "ppo", settings)
    drift = make_drift("ppo", eps=eps)
    trainer = Trainer(env, config, drift)
    keys = jax.random.split(jax.random.key(0), seeds) if keys is None else keys
    result = jax.jit(jax.vmap(trainer.train, in_axes=(0, None)))(keys, drift.default_params)
    return final_return(np.asarray(result.metrics["episode_return"]))


@pytest.mark.slow
@pytest.mark.learning
def test_brax_mode_learns_inverted_pendulum_on_cpu():
    assert train_preset("brax/inverted_pendulum")["total_timesteps"] == BRAX_CPU_TIMESTEPS
    finals = train_brax_cpu({}, eps=0.3)
    print(f"brax mode, brax/inverted_pendulum, 4 seeds x 2e6 steps: {finals}")
    assert finals.mean() >= BRAX_MODE_BAR, finals
