"""Fast checks of the discovery pieces: fitness arithmetic, NaN handling,
strategies by name, checkpoints, padding and one-line errors for bad input."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from driftlab.cli import main
from driftlab.discovery import checkpoint, fitness
from driftlab.discovery.config import DiscoveryConfig, DiscoveryError
from driftlab.discovery.sharding import padded_size
from driftlab.discovery.strategy import make_strategy

TRAIN = {"gymnax/CartPole-v1": {"total_timesteps": 1024, "num_envs": 4, "num_steps": 32}}


def make_config(**changes) -> DiscoveryConfig:
    return DiscoveryConfig.from_dict({"envs": ["gymnax/CartPole-v1"], "train": TRAIN, **changes})


def test_multi_env_fitness_is_mean_of_normalised_returns():
    returns = jnp.array([[50.0, 100.0, 10.0],
                         [25.0, 300.0, 20.0]])  # (members, envs)
    refs = jnp.array([50.0, 200.0, 10.0])
    got = fitness.combine_env_returns(returns, refs)
    # member 0: (1 + 0.5 + 1) / 3; member 1: (0.5 + 1.5 + 2) / 3
    np.testing.assert_allclose(got, [2.5 / 3, 4.0 / 3], rtol=1e-6)
    # a sampled subset averages only the selected envs; an unselected NaN is ignored
    masked = fitness.combine_env_returns(returns.at[:, 1].set(jnp.nan), refs,
                                         jnp.array([True, False, True]))
    np.testing.assert_allclose(masked, [1.0, 1.25], rtol=1e-6)


def test_final_return_is_mean_of_last_updates():
    curve = jnp.array([jnp.nan, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0])
    assert float(fitness.final_return(curve, 0.2)) == pytest.approx(9.0)
    assert np.isnan(float(fitness.final_return(jnp.full((10,), jnp.nan), 0.2)))


def test_nan_and_inf_rank_strictly_worst_and_are_counted():
    raw = jnp.array([3.0, jnp.nan, -2.0, jnp.inf, 5.0, -jnp.inf])
    cleaned, count = fitness.clean_fitness(raw)
    cleaned = np.asarray(cleaned)
    assert int(count) == 3
    assert np.all(np.isfinite(cleaned))
    finite_min = -2.0
    assert np.all(cleaned[[1, 3, 5]] < finite_min)
    np.testing.assert_array_equal(cleaned[[0, 2, 4]], [3.0, -2.0, 5.0])
    all_bad, count = fitness.clean_fitness(jnp.full((4,), jnp.nan))
    assert int(count) == 4 and np.all(np.asarray(all_bad) == 0.0)


def test_common_random_numbers_share_keys():
    key = jax.random.key(0)
    shared = jax.random.key_data(fitness.rollout_keys(key, 4, 2, common=True))
    own = jax.random.key_data(fitness.rollout_keys(key, 4, 2, common=False))
    assert shared.shape[:2] == own.shape[:2] == (4, 2)
    assert np.all(shared == shared[:1])
    assert not np.all(own == own[:1])


@pytest.mark.parametrize("name", ["Open_ES", "CMA_ES", "SNES"])
def test_strategies_by_name_improve_a_quadratic(name):
    """Each strategy, set up by name, lowers a quadratic's loss (higher-is-better
    fitness -sum(x-1)^2, negated for evosax) within 40 generations."""
    solution = {"w": jnp.zeros((6,))}
    config = make_config(strategy=name, population=16, sigma=0.3, lr=0.1, lr_decay=1.0,
                         sigma_decay=1.0)
    es, params = make_strategy(config, solution)
    state = es.init(jax.random.key(0), solution, params)

    def loss(x):
        return jnp.sum((x["w"] - 1.0) ** 2, axis=-1)

    start = float(loss(es.get_mean(state)))
    for g in range(40):
        k_ask, k_tell = jax.random.split(jax.random.key(g + 1))
        pop, state = es.ask(k_ask, state, params)
        state, _ = es.tell(k_tell, pop, loss(pop), state, params)  # minimised
    end = float(loss(es.get_mean(state)))
    assert end < 0.5 * start, (name, start, end)


@pytest.mark.parametrize("changes, fix", [
    ({"strategy": "OpenES"}, "did you mean Open_ES"),
    ({"population": 7}, "population=8"),
    ({"envs": []}, "env list is empty"),
    ({"fitness_shaping": "rank"}, "centered_rank"),
    ({"populaton": 8}, "did you mean 'population'"),
    ({"member_batch": 0}, "member_batch must be auto, all or a whole number"),
    ({"member_batch": "some"}, "member_batch must be auto, all or a whole number"),
])
def test_bad_settings_name_the_fix(changes, fix):
    with pytest.raises(DiscoveryError, match=fix):
        make_config(**changes)


@pytest.mark.parametrize("argv, fix", [
    (["--preset", "cartpol-tiny"], "did you mean cartpole-tiny"),
    (["--preset", "cartpole-tiny", "--set", "strategy=CMAES"], "did you mean CMA_ES"),
    (["--preset", "cartpole-tiny", "--set", "population=9"], "population=10"),
    (["--preset", "cartpole-tiny", "--set", "envs=[]"], "env list is empty"),
])
def test_cli_bad_input_is_one_line(argv, fix, capsys, tmp_path):
    assert main(["discover", *argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fix in err, err


def test_padding_or_refusal():
    assert padded_size(16, 4, "refuse") == 16
    with pytest.warns(UserWarning, match="padded to 8"):
        assert padded_size(6, 4, "pad") == 8
    with pytest.raises(DiscoveryError, match="population=4 or 8"):
        padded_size(6, 4, "refuse")


def test_corrupt_latest_checkpoint_falls_back(tmp_path):
    template = {"a": np.zeros((3,), np.float32), "n": np.int32(0)}
    checkpoint.save_checkpoint(tmp_path, 1, {"a": np.arange(3, dtype=np.float32),
                                             "n": np.int32(1)})
    latest = checkpoint.save_checkpoint(tmp_path, 2, {"a": np.ones(3, np.float32),
                                                      "n": np.int32(2)})
    assert checkpoint.load_latest_checkpoint(tmp_path, template)[0] == 2
    blob = bytearray(latest.read_bytes())
    blob[-3] ^= 0xFF  # flip bits in the payload
    latest.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="gen_000002.ckpt is unusable"):
        generation, state = checkpoint.load_latest_checkpoint(tmp_path, template)
    assert generation == 1
    np.testing.assert_array_equal(state["a"], [0.0, 1.0, 2.0])
    checkpoint.list_checkpoints(tmp_path)[0].write_bytes(b"garbage")
    with pytest.raises(checkpoint.CheckpointError, match="every checkpoint"):
        with pytest.warns(UserWarning):
            checkpoint.load_latest_checkpoint(tmp_path, template)


@pytest.mark.parametrize("temporal, ppo_init", [(False, False), (True, True)])
def test_drift_variant_chosen_in_config(temporal, ppo_init):
    from driftlab.discovery.loop import Discovery

    disc = Discovery(make_config(drift={"temporal": temporal, "ppo_init": ppo_init}))
    assert disc.drift.spec["temporal"] is temporal and disc.drift.spec["ppo_init"] is ppo_init
    assert disc.init_params["w_in"].shape == (16 if temporal else 8, 128)
    # default: a small random start (std init_scale); `init_mean: zeros` is the published one
    assert 0.01 < float(jnp.std(disc.init_params["w_in"])) < 0.05
    zeros = Discovery(make_config(drift={"temporal": temporal, "ppo_init": ppo_init},
                                  init_mean="zeros"))
    assert float(jnp.abs(zeros.init_params["w_in"]).sum()) == 0.0


def _grid_drifts(disc, members):
    r = jnp.linspace(0.5, 1.5, 21)[:, None]
    a = jnp.linspace(-2.0, 2.0, 9)[None]
    return jnp.stack([disc.drift.on_grid(jax.tree.map(lambda x, i=i: x[i], members), r, a)
                      for i in range(jax.tree.leaves(members)[0].shape[0])])


@pytest.mark.parametrize("init_mean", ["random", "zeros"])
def test_first_generation_antithetic_pairs_are_different_drifts(init_mean):
    """With the published all-zero mean, theta and -theta are one drift (no biases,
    tanh odd): every antithetic pair scores the same drift and the first ES
    gradient follows noise. The default random start makes the pairs differ."""
    from driftlab.discovery.loop import Discovery

    disc = Discovery(make_config(population=8, init_mean=init_mean, drift={"ppo_init": True}))
    state = disc.init()
    members, _ = disc.es.ask(jax.random.key(3), state.es_state, disc.es_params)
    values = _grid_drifts(disc, members)
    half = values.shape[0] // 2
    pair_gap = jnp.abs(values[:half] - values[half:]).max(axis=(1, 2))  # evosax: x, then -x
    if init_mean == "zeros":
        assert float(pair_gap.max()) == 0.0
    else:
        assert float(pair_gap.min()) > 1e-4
        # and the start is still close to PPO (the published PPO-init drift)
        mean = _grid_drifts(disc, jax.tree.map(lambda x: x[None], disc.init_params))[0]
        zero = _grid_drifts(disc, jax.tree.map(lambda x: jnp.zeros_like(x)[None], disc.init_params))[0]
        assert float(jnp.abs(mean - zero).mean()) < 0.1 * float(jnp.abs(zero).mean())


def test_first_es_gradient_is_driven_by_different_drifts():
    """The OpenES gradient sum_i f_i (x_i - mean) / sigma on a fitness that depends
    only on the drift (prefer a looser drift): from the random start the pairs
    differ and the gradient is substantial; from the published zeros every pair
    has equal fitness and the gradient is zero up to float rounding (which
    Adam would then blow up into a full, random step)."""
    from jax.flatten_util import ravel_pytree

    from driftlab.discovery.loop import Discovery

    norms = {}
    for init_mean in ("random", "zeros"):
        disc = Discovery(make_config(population=8, init_mean=init_mean, drift={"ppo_init": True}))
        state = disc.init()
        members, es_state = disc.es.ask(jax.random.key(3), state.es_state, disc.es_params)
        fit = -jnp.abs(_grid_drifts(disc, members)).mean(axis=(1, 2))
        fit = (fit - fit.mean()) / (fit.std() + 1e-12)  # z-scored, as the ES shapes it
        flat = jax.vmap(lambda m: ravel_pytree(m)[0])(members)
        noise = (flat - ravel_pytree(disc.init_params)[0]) / es_state.std
        norms[init_mean] = float(jnp.linalg.norm(fit @ noise)) / fit.shape[0]
    assert norms["random"] > 0.1, norms
    assert norms["zeros"] < 1e-5, norms


def test_cpu_devices_setting(monkeypatch):
    """auto = one device per core, off/1 = leave XLA alone, a bad value is one line;
    never once a backend runs or when XLA_FLAGS already sets the count."""
    from driftlab.discovery import sharding

    monkeypatch.setattr("jax._src.xla_bridge.backends_are_initialized", lambda: False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setenv("XLA_FLAGS", "--xla_foo=1")
    assert sharding.split_cpu_into_devices("auto") == 2
    import os

    assert os.environ["XLA_FLAGS"] == "--xla_foo=1 --xla_force_host_platform_device_count=2"
    assert sharding.split_cpu_into_devices("4") is None  # already set: untouched
    monkeypatch.setenv("XLA_FLAGS", "")
    assert sharding.split_cpu_into_devices("off") is None
    assert sharding.split_cpu_into_devices("1") is None and os.environ["XLA_FLAGS"] == ""
    with pytest.raises(DiscoveryError, match="auto, off or a whole number"):
        sharding.split_cpu_into_devices("many")
    monkeypatch.setattr("jax._src.xla_bridge.backends_are_initialized", lambda: True)
    assert sharding.split_cpu_into_devices("auto") is None


def test_member_batch_resolves_per_platform():
    from driftlab.discovery.config import CPU_BATCH_BYTES

    breakout = 4 * 16 * 128 * 400  # bytes of one member's rollout observations
    assert make_config().resolved_member_batch("cpu", breakout) == CPU_BATCH_BYTES // breakout
    assert make_config().resolved_member_batch("cpu", 10 * CPU_BATCH_BYTES) == 1
    assert make_config().resolved_member_batch("gpu", breakout) is None  # all at once
    assert make_config(member_batch="all").resolved_member_batch("cpu", 1) is None
    assert make_config(member_batch=3).resolved_member_batch("gpu", 1) == 3


@pytest.mark.slow
def test_members_in_sequence_score_as_one_batch():
    """member_batch only changes how the runs are scheduled, not their returns."""
    from driftlab.discovery.loop import Discovery

    config = make_config(population=6, generations=1)
    returns = {}
    for batch in ("all", 1, 4):  # 4: a full batch of 4 then a remainder of 2
        discovery = Discovery(dataclasses.replace(config, member_batch=batch))
        _, info = discovery.step(discovery.init())
        returns[batch] = np.asarray(info["returns"])
    np.testing.assert_allclose(returns[1], returns["all"], rtol=1e-5)
    np.testing.assert_allclose(returns[4], returns["all"], rtol=1e-5)
