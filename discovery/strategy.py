"""evosax strategies by name, with the published LPO set-up for Open_ES, and the
search space the ES moves in.

evosax minimises: callers pass the *negated* fitness to `tell`; everything
a user sees (logs, exports) stays "higher is better".

Search space. The ES evolves unconstrained coordinates u, one per parameter,
and every member is mapped to the family's constants before it trains, so a
family's constraints hold for every u the ES can propose (no clip of the
ES state, no rejected members):

    LPO (and any array leaf)      theta = u                (today's runs, bit for bit)
    PPO eps in (0, 1)             eps = sigmoid(u)         u = logit(eps)
    a positive scalar constant    c = exp(u)               u = log(c)     (DPO alpha, beta)
    a negative scalar constant    c = -exp(u)              (distilled or registered families)
    a zero scalar constant        c = u

The log scale makes sigma a relative step (sigma 0.3 moves DPO's alpha by
about a factor 1.35 either way), which suits constants of different magnitudes (alpha 2,
beta 0.6), and keeps a distilled formula's constants on the side of zero
they were fitted on. u is clipped to [-20, 20] before exp (constants in
[2e-9, 4.9e8], never 0 or inf) and to [-15, 15] before sigmoid (eps in
[3.1e-7, 1 - 3.1e-7] in float32, never 0 or 1); a NaN member stays NaN and
ranks worst (discovery/fitness.py clean_fitness) instead of failing.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from evosax.algorithms.distribution_based import distribution_based_algorithms
from evosax.core.fitness_shaping import (
    centered_rank_fitness_shaping_fn,
    identity_fitness_shaping_fn,
    standardize_fitness_shaping_fn,
)

from driftlab.discovery.config import DiscoveryConfig, DiscoveryError
from driftlab.hints import did_you_mean

SHAPING_FNS = {
    "centered_rank": centered_rank_fitness_shaping_fn,
    "z_score": standardize_fitness_shaping_fn,
    "none": identity_fitness_shaping_fn,
}


def check_strategy_name(name: str) -> None:
    """DiscoveryError naming the closest evosax strategy if `name` is unknown."""
    if name not in distribution_based_algorithms:
        hint = did_you_mean(name, distribution_based_algorithms, n=2)
        raise DiscoveryError(
            f"unknown ES strategy {name!r}{hint}; choose an evosax distribution-based "
            f"algorithm such as Open_ES, CMA_ES, SNES, PGPE, Sep_CMA_ES")


def decay_schedule(init: float, decay: float, floor: float) -> optax.Schedule:
    """init * decay**generation, never below `floor` (the published per-generation decay)."""
    if decay >= 1.0:
        return optax.constant_schedule(init)
    return optax.exponential_decay(init, transition_steps=1, decay_rate=decay,
                                   end_value=floor if floor > 0 else None)


def make_strategy(config: DiscoveryConfig, solution: Any) -> tuple[Any, Any]:
    """(es, es_params) for `config.strategy` over pytrees shaped like `solution`.

    Open_ES: antithetic sampling, Adam(lr schedule, b1, b2) on the ES gradient,
    sigma schedule, the configured fitness shaping (published LPO runs). Other
    strategies get whichever of those options their constructor takes, and
    `sigma` as `std_init` when their params have one.
    """
    check_strategy_name(config.strategy)
    cls = distribution_based_algorithms[config.strategy]
    accepted = inspect.signature(cls.__init__).parameters
    options: dict[str, Any] = {
        "use_antithetic_sampling": config.antithetic,
        "optimizer": optax.adam(decay_schedule(config.lr, config.lr_decay, config.lr_min),
                                b1=config.adam_b1, b2=config.adam_b2),
        "std_schedule": decay_schedule(config.sigma, config.sigma_decay, config.sigma_min),
        "fitness_shaping_fn": SHAPING_FNS[config.fitness_shaping],
    }
    if config.strategy != "Open_ES":
        # Other strategies have tuned defaults of their own (CMA-ES's weights, SNES's
        # learning rates); only override fitness shaping when asked for explicitly.
        options.pop("optimizer")
        options.pop("fitness_shaping_fn")
    kwargs = {k: v for k, v in options.items() if k in accepted}
    try:
        es = cls(config.population, solution, **kwargs)
    except AssertionError as err:  # evosax checks with asserts, e.g. "must be even"
        raise DiscoveryError(f"{config.strategy} refuses population={config.population}: "
                             f"{err}; change population") from None
    params = es.default_params
    if hasattr(params, "std_init"):
        params = params.replace(std_init=config.sigma)
    if hasattr(params, "std_min") and config.sigma_min > 0:  # CMA-ES: a floor on its step size
        params = params.replace(std_min=config.sigma_min)
    return es, params


def strategy_sigma(state: Any) -> Any:
    """The current search std (scalar or per-dimension) of an evosax state, or None."""
    for name in ("std", "sigma"):
        if hasattr(state, name):
            return getattr(state, name)
    return None


# ---- search space ----------------------------------------------------------------

LOG_BOUND = 20.0  # |u| before exp: constants in [2e-9, 4.9e8]
LOGIT_BOUND = 15.0  # |u| before sigmoid: eps in [3.1e-7, 1 - 3.1e-7] (float32)
LOW_DIMENSIONAL = 16  # families with at most this many parameters log them each generation


def _leaf_name(path: tuple) -> str:
    return ".".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))))
                    for k in path)


@dataclass(frozen=True)
class SearchSpace:
    """The map between drift parameters and the unconstrained ES coordinates
    (see the module docstring): one transform per leaf, in `jax.tree` order."""

    transforms: tuple[str, ...]  # "identity", "log", "neglog" or "logit"
    names: tuple[str, ...]
    sizes: tuple[int, ...]

    @property
    def identity(self) -> bool:
        return all(t == "identity" for t in self.transforms)

    @property
    def low_dimensional(self) -> bool:
        return sum(self.sizes) <= LOW_DIMENSIONAL

    def _map(self, tree: Any, forward: bool) -> Any:
        leaves, treedef = jax.tree.flatten(tree)
        out = []
        for leaf, kind in zip(leaves, self.transforms, strict=True):
            x = jnp.asarray(leaf)
            if kind == "log":
                x = jnp.exp(jnp.clip(x, -LOG_BOUND, LOG_BOUND)) if forward else jnp.log(
                    jnp.clip(x, np.exp(-LOG_BOUND), np.exp(LOG_BOUND)))
            elif kind == "neglog":
                x = -jnp.exp(jnp.clip(x, -LOG_BOUND, LOG_BOUND)) if forward else jnp.log(
                    jnp.clip(-x, np.exp(-LOG_BOUND), np.exp(LOG_BOUND)))
            elif kind == "logit":
                x = jax.nn.sigmoid(jnp.clip(x, -LOGIT_BOUND, LOGIT_BOUND)) if forward else \
                    jnp.clip(jnp.log(x) - jnp.log1p(-x), -LOGIT_BOUND, LOGIT_BOUND)
            out.append(x)
        return jax.tree.unflatten(treedef, out)

    def decode(self, coords: Any) -> Any:
        """ES coordinates -> drift parameters (elementwise: any leading batch axes)."""
        return coords if self.identity else self._map(coords, True)

    def encode(self, params: Any) -> Any:
        """Drift parameters -> ES coordinates (the inverse of `decode` inside the bounds)."""
        return params if self.identity else self._map(params, False)

    def constants(self, params: Any) -> dict[str, Any]:
        """{name: value} of (unbatched) drift parameters, for logs: floats, or lists."""
        out: dict[str, Any] = {}
        for name, leaf in zip(self.names, jax.tree.leaves(params), strict=True):
            value = np.asarray(jax.device_get(leaf), np.float64)
            out[name] = float(value) if value.ndim == 0 else value.tolist()
        return out


def search_space(kind: str, params: Any) -> SearchSpace:
    """The search space of drift family `kind` whose start parameters are `params`.

    LPO: identity (the ES moves the network weights themselves, as published).
    PPO: eps = sigmoid(u). Every other family (DPO, distilled formulas, registered
    ones): each scalar constant on a log scale with the sign of its start value
    (zero: as is), array leaves as they are."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    transforms, names, sizes = [], [], []
    for path, leaf in flat:
        value = np.asarray(jax.device_get(leaf))
        names.append(_leaf_name(path))
        sizes.append(int(value.size))
        if kind == "lpo" or value.ndim > 0:
            transforms.append("identity")
        elif kind == "ppo":
            transforms.append("logit")
        elif value > 0:
            transforms.append("log")
        elif value < 0:
            transforms.append("neglog")
        else:
            transforms.append("identity")
    return SearchSpace(tuple(transforms), tuple(names), tuple(sizes))
