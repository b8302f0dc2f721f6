"""Drift functions: PPO/DPO formulas, LPO at init, the three drift conditions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from driftlab.algorithms import make_drift
from driftlab.algorithms.drifts import LPO_HIDDEN

# Dense grid over ratio (0.05 .. 3) and advantage (-5 .. 5), including r = 1 exactly.
RATIOS = jnp.concatenate([jnp.linspace(0.05, 3.0, 301), jnp.array([1.0])])
ADVANTAGES = jnp.linspace(-5.0, 5.0, 201)
R_GRID, A_GRID = jnp.meshgrid(RATIOS, ADVANTAGES, indexing="ij")


def random_lpo_params(temporal: bool, seed: int = 0, scale: float = 0.5) -> dict:
    k1, k2 = jax.random.split(jax.random.key(seed))
    n_in = 16 if temporal else 8
    return {"w_in": scale * jax.random.normal(k1, (n_in, LPO_HIDDEN)),
            "w_out": scale * jax.random.normal(k2, (LPO_HIDDEN,))}


BUILT_INS = [
    ("ppo", {}, None),
    ("ppo-eps0.3", {"eps": 0.3}, None),
    ("dpo", {}, None),
    ("none", {}, None),
    ("lpo-zero", {}, None),
    ("lpo-zero-ppo-init", {"ppo_init": True}, None),
    ("lpo-random", {}, random_lpo_params(False)),
    ("ta-lpo-random-ppo-init", {"temporal": True, "ppo_init": True}, random_lpo_params(True, 1)),
]


def build(label: str, options: dict, params):
    kind = label.split("-")[0]
    if kind == "ta":
        kind = "lpo"
    drift = make_drift(kind, **options)
    return drift, drift.default_params if params is None else params


def test_ppo_drift_equals_clipped_surrogate():
    key_r, key_a = jax.random.split(jax.random.key(0))
    ratio = jnp.exp(0.5 * jax.random.normal(key_r, (10_000,)))
    adv = 2.0 * jax.random.normal(key_a, (10_000,))
    drift = make_drift("ppo", eps=0.2)
    objective = ratio * adv - drift.on_grid(drift.default_params, ratio, adv)
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 0.8, 1.2) * adv)
    np.testing.assert_allclose(objective, surrogate, atol=1e-6)


@pytest.mark.parametrize(
    "ratio, adv, expected",
    [
        # A >= 0: relu((r-1)A - alpha*tanh((r-1)A/alpha)), alpha = 2
        (1.5, 2.0, 1.0 - 2.0 * np.tanh(0.5)),  # 0.0758...
        (3.0, 1.0, 2.0 - 2.0 * np.tanh(1.0)),  # 0.4768...
        (0.5, 1.0, 0.0),  # -0.5 - 2*tanh(-0.25) = -0.0102 < 0: the relu clips it
        # A < 0: relu(log(r)A - beta*tanh(log(r)A/beta)), beta = 0.6
        (0.5, -1.0, np.log(2.0) - 0.6 * np.tanh(np.log(2.0) / 0.6)),  # 0.1979...
        (2.0, -2.0, 0.0),  # log(r)A < 0 there: x - beta*tanh(x/beta) < 0, clipped
        (0.25, -2.0, 2 * np.log(4.0) - 0.6 * np.tanh(2 * np.log(4.0) / 0.6)),  # 2.1726...
        (1.0, 3.0, 0.0),
        (1.0, -3.0, 0.0),
    ],
)
def test_dpo_matches_formula(ratio, adv, expected):
    drift = make_drift("dpo")
    value = drift.on_grid(drift.default_params, jnp.float32(ratio), jnp.float32(adv))
    np.testing.assert_allclose(float(value), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("label, options, params", BUILT_INS, ids=[b[0] for b in BUILT_INS])
def test_drift_conditions_on_dense_grid(label, options, params):
    drift, params = build(label, options, params)
    for progress in (0.0, 0.5, 1.0):
        values = drift.on_grid(params, R_GRID, A_GRID, progress)
        assert bool(jnp.all(values >= 0)), f"{label}: negative drift"
        at_one = drift.on_grid(params, jnp.ones_like(ADVANTAGES), ADVANTAGES, progress)
        assert float(jnp.max(jnp.abs(at_one))) == 0.0, f"{label}: D(1, A) != 0"
        d_dr = jax.vmap(jax.grad(lambda r, a, p=progress: drift.on_grid(params, r, a, p)))(
            jnp.ones_like(ADVANTAGES), ADVANTAGES)
        assert float(jnp.max(jnp.abs(d_dr))) == 0.0, f"{label}: dD/dr(1, A) != 0"


def test_conditions_check_can_fail():
    """The grid check above detects a drift that breaks each condition."""
    drift = make_drift("ppo")
    broken = drift.on_grid(drift.default_params, R_GRID, A_GRID) - 0.01 * (R_GRID - 1.0)
    assert bool(jnp.any(broken < 0))


def test_lpo_zero_params_with_ppo_init_is_shifted_ppo():
    """theta = 0: relu(D_ppo(eps 0.2) + 0 - 1e-4), the published combination."""
    lpo = make_drift("lpo", ppo_init=True)
    ppo = make_drift("ppo", eps=0.2)
    expected = jax.nn.relu(ppo.on_grid(ppo.default_params, R_GRID, A_GRID) - 1e-4)
    np.testing.assert_array_equal(lpo.on_grid(lpo.default_params, R_GRID, A_GRID), expected)


def test_lpo_ppo_init_net_can_loosen_ppo_clip():
    """The net sits inside the relu (dpo/brax_drift.py, lpo_bb.py), so a negative
    f_theta lowers the drift below PPO's where PPO's is positive; adding the net
    outside the relu (the old bug) could only raise it."""
    lpo = make_drift("lpo", ppo_init=True)
    ppo = make_drift("ppo", eps=0.2)
    # f_theta = -tanh((1-r)^2): negative away from r = 1, zero at r = 1.
    params = {"w_in": jnp.zeros((8, LPO_HIDDEN)).at[3, 0].set(1.0),
              "w_out": jnp.zeros((LPO_HIDDEN,)).at[0].set(-1.0)}
    learned = lpo.on_grid(params, R_GRID, A_GRID)
    clipped = ppo.on_grid(ppo.default_params, R_GRID, A_GRID)
    where_ppo_positive = clipped > 1e-3
    assert bool(jnp.any(learned[where_ppo_positive] < clipped[where_ppo_positive] - 1e-3))
    assert bool(jnp.all(learned >= 0.0))
    f = -jnp.tanh(jnp.square(1.0 - R_GRID))
    np.testing.assert_allclose(learned, jax.nn.relu(clipped + f - 1e-4), atol=1e-6)


@pytest.mark.parametrize("temporal", [False, True])
def test_lpo_zero_params_is_zero_drift(temporal):
    lpo = make_drift("lpo", temporal=temporal)
    values = lpo.on_grid(lpo.default_params, R_GRID, A_GRID, 0.7)
    assert float(jnp.max(jnp.abs(values))) == 0.0


def test_drift_constants_are_vmappable_leaves():
    dpo = make_drift("dpo")
    alphas = jnp.array([0.5, 1.0, 2.0, 4.0])
    params = {"alpha": alphas, "beta": jnp.full(4, 0.6)}
    values = jax.vmap(lambda p: dpo.on_grid(p, 2.0, 1.0))(params)
    expected = [max(0.0, 1.0 - a * np.tanh(1.0 / a)) for a in alphas]
    np.testing.assert_allclose(values, expected, rtol=1e-5)


def test_unknown_drift_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown drift/algorithm 'ppp'.*did you mean ppo"):
        make_drift("ppp")
