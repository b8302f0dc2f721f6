"""Drift functions D(r, A) of Mirror Learning (see ../DESIGN.md of the project).

A `Drift` bundles a pure function
    fn(params, ratio, log_ratio, advantage, progress) -> penalty   (elementwise)
with the default value of its parameters. Constants of closed-form drifts
(PPO's eps, DPO's alpha and beta) are parameters, i.e. pytree leaves, so a
sweep over them is a `vmap`; the LPO network's weights are parameters too.
`progress` is the fraction of training done, in [0, 1] (used by TA-LPO).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from driftlab.hints import did_you_mean

DriftFn = Callable[[Any, jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]

LPO_SHIFT = 1e-4  # drift is exactly 0 (with 0 gradient) while f_theta < 1e-4
LPO_HIDDEN = 128
PPO_INIT_EPS = 0.2


@dataclass(frozen=True)
class Drift:
    """A drift family: its function, default parameters and a description.

    `spec` is the JSON-serialisable description written next to exported
    parameters (kind plus structural options); `make_drift(**spec)` rebuilds it.
    """

    name: str
    fn: DriftFn = field(repr=False)
    default_params: Any = field(repr=False)
    spec: dict[str, Any] = field(default_factory=dict)

    def __call__(self, params: Any, ratio: jax.Array, log_ratio: jax.Array,
                 advantage: jax.Array, progress: jax.Array | float = 0.0) -> jax.Array:
        return self.fn(params, ratio, log_ratio, advantage, jnp.asarray(progress, jnp.float32))

    def on_grid(self, params: Any, ratio: jax.Array, advantage: jax.Array,
                progress: jax.Array | float = 0.0) -> jax.Array:
        """D at given ratios (log-ratio computed here); broadcasts its inputs."""
        ratio, advantage = jnp.broadcast_arrays(jnp.asarray(ratio, jnp.float32),
                                                jnp.asarray(advantage, jnp.float32))
        return self(params, ratio, jnp.log(ratio), advantage, progress)


# ---- closed-form drifts ------------------------------------------------------

def ppo_drift_fn(params: dict, ratio, log_ratio, advantage, progress):
    """relu((r - clip(r, 1-eps, 1+eps)) * A): r*A - D is PPO's clipped surrogate."""
    eps = params["eps"]
    return jax.nn.relu((ratio - jnp.clip(ratio, 1.0 - eps, 1.0 + eps)) * advantage)


def dpo_drift_fn(params: dict, ratio, log_ratio, advantage, progress):
    """DPO (Lu et al. 2022): (r-1)-based for A >= 0, log r-based for A < 0."""
    alpha, beta = params["alpha"], params["beta"]
    pos = (ratio - 1.0) * advantage
    neg = log_ratio * advantage
    drift_pos = jax.nn.relu(pos - alpha * jnp.tanh(pos / alpha))
    drift_neg = jax.nn.relu(neg - beta * jnp.tanh(neg / beta))
    return jnp.where(advantage >= 0, drift_pos, drift_neg)


def zero_drift_fn(params: Any, ratio, log_ratio, advantage, progress):
    """D = 0: the plain importance-weighted policy gradient."""
    return jnp.zeros_like(ratio)


# ---- LPO network drift ---------------------------------------------------------

def lpo_features(ratio, log_ratio, advantage, progress, temporal: bool) -> jax.Array:
    """The published LPO inputs: [log r, (log r)^2, 1-r, (1-r)^2] and the same
    times A (8 features); TA-LPO appends all 8 times `progress` (16). Shape (..., F)."""
    base = jnp.stack([log_ratio, jnp.square(log_ratio), 1.0 - ratio, jnp.square(1.0 - ratio)], -1)
    feats = jnp.concatenate([base, base * advantage[..., None]], -1)
    if temporal:
        feats = jnp.concatenate([feats, feats * progress], -1)
    return feats


def lpo_init_params(temporal: bool = False, hidden: int = LPO_HIDDEN) -> dict:
    """All-zero weights (ES starts there): a drift of exactly 0 (or PPO's)."""
    n_in = 16 if temporal else 8
    return {"w_in": jnp.zeros((n_in, hidden)), "w_out": jnp.zeros((hidden,))}


def make_lpo_drift_fn(temporal: bool, ppo_init: bool) -> DriftFn:
    def fn(params: dict, ratio, log_ratio, advantage, progress):
        feats = lpo_features(ratio, log_ratio, advantage, progress, temporal)
        # No biases anywhere: f(x) = 0 whenever r = 1 (all features vanish).
        out = jnp.tanh(feats @ params["w_in"]) @ params["w_out"]
        if ppo_init:
            # Inside the relu, as in dpo/brax_drift.py (compute_drift_loss) and
            # Goldie et al.'s lpo_bb.py: the net can loosen PPO's clip, not only tighten it.
            out = out + ppo_drift_fn({"eps": PPO_INIT_EPS}, ratio, log_ratio, advantage, progress)
        return jax.nn.relu(out - LPO_SHIFT)

    return fn


# ---- registry -----------------------------------------------------------------

def _ppo(eps: float = 0.2) -> Drift:
    from driftlab.algorithms.config import ConfigError

    if not 0.0 < float(eps) < 1.0:
        raise ConfigError(f"PPO's clip eps must be in (0, 1), got {eps}; e.g. --set drift.eps=0.2")
    return Drift("ppo", ppo_drift_fn, {"eps": jnp.float32(eps)}, {"kind": "ppo"})


def _dpo(alpha: float = 2.0, beta: float = 0.6) -> Drift:
    from driftlab.algorithms.config import ConfigError

    for name, value in (("alpha", alpha), ("beta", beta)):
        # DPO divides by both (tanh(x / alpha)): zero or negative gives NaN losses.
        if not (math.isfinite(float(value)) and float(value) > 0.0):
            raise ConfigError(f"DPO's {name} must be a positive number, got {value}; "
                             f"e.g. --set drift.{name}={2.0 if name == 'alpha' else 0.6}")
    params = {"alpha": jnp.float32(alpha), "beta": jnp.float32(beta)}
    return Drift("dpo", dpo_drift_fn, params, {"kind": "dpo"})


def _none() -> Drift:
    return Drift("none", zero_drift_fn, {}, {"kind": "none"})


def _lpo(temporal: bool = False, ppo_init: bool = False, hidden: int = LPO_HIDDEN) -> Drift:
    spec = {"kind": "lpo", "temporal": bool(temporal), "ppo_init": bool(ppo_init),
            "hidden": int(hidden), "features": "lpo16" if temporal else "lpo8"}
    return Drift("ta-lpo" if temporal else "lpo", make_lpo_drift_fn(temporal, ppo_init),
                 lpo_init_params(temporal, hidden), spec)


DRIFTS: dict[str, Callable[..., Drift]] = {"ppo": _ppo, "dpo": _dpo, "none": _none, "lpo": _lpo}


def register_drift(kind: str, factory: Callable[..., Drift]) -> None:
    """Make `make_drift(kind, ...)` (and so `--algo kind`) build `factory(...)`."""
    DRIFTS[kind] = factory


class UnknownDriftError(ValueError):
    """Raised for a drift kind that is not registered."""


def make_drift(kind: str, **options: Any) -> Drift:
    """Build a drift by kind: `ppo` (eps), `dpo` (alpha, beta), `none`,
    `lpo` (temporal, ppo_init, hidden); options set the defaults.

    Options are checked against the factory's signature before it runs: an
    unknown option is a ConfigError naming the accepted ones, and a value whose
    type differs from the option's default (a number, a whole number, true or
    false) is a ConfigError naming the option, the value and the type.
    Numeric constants must be finite."""
    from driftlab.algorithms.config import ConfigError, coerce

    options.pop("features", None)  # derived from `temporal`; present in exported specs
    if kind == "ta-lpo":
        kind, options = "lpo", {**options, "temporal": True}
    if kind not in DRIFTS:
        hint = did_you_mean(kind, DRIFTS, n=2)
        raise UnknownDriftError(
            f"unknown drift/algorithm {kind!r}{hint}; choose one of {', '.join(sorted(DRIFTS))}"
        )
    factory = DRIFTS[kind]
    try:
        parameters = dict(inspect.signature(factory).parameters)
        open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    except (TypeError, ValueError):  # a builtin or C factory: nothing to check against
        parameters, open_ended = {}, True
    named = {name: p for name, p in parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = [name for name in options if name not in named]
    if unknown and not open_ended:
        accepted = ", ".join(named) or "no options"
        raise ConfigError(f"unknown option(s) {', '.join(map(repr, unknown))} for drift {kind!r}; "
                          f"it accepts {accepted}")
    missing = [name for name, p in named.items()
               if p.default is inspect.Parameter.empty and name not in options]
    if missing:
        raise ConfigError(f"drift {kind!r} needs the option(s) {', '.join(missing)}")
    for name, parameter in named.items():
        if name not in options:
            continue
        default = parameter.default
        if isinstance(default, bool):
            options[name] = coerce(f"drift.{name}", options[name], bool)
        elif isinstance(default, int):
            options[name] = coerce(f"drift.{name}", options[name], int)
        elif isinstance(default, float):
            value = coerce(f"drift.{name}", options[name], float)
            if not math.isfinite(value):
                raise ConfigError(f"drift.{name} must be a finite number (float), got {value}")
            options[name] = value
    try:
        return factory(**options)
    except TypeError as err:
        raise ConfigError(f"bad options {options} for drift {kind!r}: {err}") from None
