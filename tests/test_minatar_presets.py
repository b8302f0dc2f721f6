"""Published set-ups in the presets: Goldie et al.'s MinAtar inner PPO
(learn-rl-algorithms, algorithms/utils/configs.py), Adam b1/b2 reaching optax,
and the ES floors / PPO-init / fitness modes of the discovery presets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from driftlab import envs
from driftlab.algorithms import TrainConfig, Trainer, make_drift
from driftlab.discover_command import build_config
from driftlab.discovery.strategy import decay_schedule
from driftlab.presets import train_preset

# configs.py: LR, B1, B2 per game (all_configs["breakout"], ...).
GOLDIE_PER_GAME = {
    "Breakout-MinAtar": (1e-2, 0.9, 0.99),
    "SpaceInvaders-MinAtar": (7e-3, 0.9, 0.99),
    "Asterix-MinAtar": (3e-3, 0.9, 0.999),
    "Freeway-MinAtar": (1e-3, 0.9, 0.99),
}


@pytest.mark.parametrize("game", sorted(GOLDIE_PER_GAME))
def test_minatar_preset_is_goldie_inner_ppo(game):
    config = TrainConfig.from_dict(train_preset(f"gymnax/{game}"))
    lr, b1, b2 = GOLDIE_PER_GAME[game]
    hp = config.hyperparams
    assert (config.num_envs, config.num_steps, config.total_timesteps) == (64, 128, 10_000_000)
    assert (config.update_epochs, config.num_minibatches) == (4, 8)
    assert config.activation == "relu" and config.actor_hidden == config.critic_hidden == (64, 64)
    assert config.anneal_lr and config.clip_value_loss and config.adam_eps == 1e-5
    assert (config.adam_b1, config.adam_b2) == (b1, b2)
    assert float(hp.learning_rate) == lr
    assert (float(hp.gamma), float(hp.gae_lambda)) == (0.99, 0.95)
    assert (float(hp.ent_coef), float(hp.vf_coef), float(hp.max_grad_norm)) == (0.01, 0.5, 0.5)
    assert float(hp.vf_clip) == 0.2  # CLIP_EPS clips the value loss too
    assert float(make_drift("ppo").default_params["eps"]) == pytest.approx(0.2)  # CLIP_EPS


def test_adam_betas_reach_optax():
    cfg = TrainConfig.from_dict({"total_timesteps": 64, "num_envs": 4, "num_steps": 16,
                                 "adam_b1": 0.5, "adam_b2": 0.99})
    trainer = Trainer(envs.make("gymnax/CartPole-v1"), cfg, make_drift("ppo"))
    optimizer = trainer._optimizer(cfg.hyperparams)
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([0.1, -0.2, 0.3])}  # under the clip norm of 0.5
    _, state = optimizer.update(grads, optimizer.init(params), params)
    adam = next(s for s in state if isinstance(s, optax.ScaleByAdamState))
    np.testing.assert_allclose(adam.mu["w"], 0.5 * grads["w"], rtol=1e-6)  # (1 - b1) g
    np.testing.assert_allclose(adam.nu["w"], 0.01 * grads["w"] ** 2, rtol=1e-6)  # (1 - b2) g^2


def test_adam_b2_changes_a_run_and_defaults_are_bitwise_unchanged():
    base = {"total_timesteps": 64, "num_envs": 4, "num_steps": 16}  # one update
    env, ppo = envs.make("gymnax/CartPole-v1"), make_drift("ppo")

    def final_actor(settings):
        trainer = Trainer(env, TrainConfig.from_dict(settings), ppo)
        out = jax.jit(trainer.train)(jax.random.key(0), ppo.default_params)
        return np.concatenate([np.ravel(x) for x in jax.tree.leaves(out.params["actor"])])

    default = final_actor(base)
    np.testing.assert_array_equal(default, final_actor({**base, "adam_b1": 0.9,
                                                        "adam_b2": 0.999}))
    assert not np.array_equal(default, final_actor({**base, "adam_b2": 0.99}))


def test_bad_adam_beta_is_a_config_error():
    from driftlab.algorithms import ConfigError

    with pytest.raises(ConfigError, match="adam_b2 must be in"):
        TrainConfig.from_dict({"adam_b2": 1.0})


@pytest.mark.parametrize("name, mode", [("brax-ant", "final_eval"),
                                        ("minatar-breakout", "final_update"),
                                        ("multi-minatar", "final_update")])
def test_published_discovery_presets(name, mode):
    config = build_config(name, None, {})
    assert config.drift.options["ppo_init"]
    assert (config.sigma_min, config.lr_min, config.adam_b1, config.adam_b2) == (
        0.01, 0.001, 0.99, 0.999)
    assert config.fitness == mode
    if mode == "final_eval":
        assert config.eval_envs == 128
    else:
        assert (config.sigma, config.lr, config.sigma_decay, config.lr_decay) == (
            0.03, 0.03, 0.99, 0.99)
        assert (config.population, config.generations) == (64, 800)


def test_cartpole_tiny_keeps_last_fraction():
    assert build_config("cartpole-tiny", None, {}).fitness == "last_fraction"


def test_minatar_breakout_schedules_stop_at_their_floors():
    config = build_config("minatar-breakout", None, {})
    sigma = decay_schedule(config.sigma, config.sigma_decay, config.sigma_min)
    lr = decay_schedule(config.lr, config.lr_decay, config.lr_min)
    # 0.03 * 0.99**800 ~ 1e-5 without a floor; schedules are float32, so are the floors
    assert sigma(800) >= np.float32(0.01) and lr(800) >= np.float32(0.001)
    assert float(sigma(800)) == pytest.approx(0.01) and float(lr(800)) == pytest.approx(0.001)
    assert float(sigma(50)) == pytest.approx(0.03 * 0.99 ** 50, rel=1e-5)
