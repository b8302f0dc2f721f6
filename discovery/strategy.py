"""evosax strategies by name, with the published LPO set-up for Open_ES.

evosax minimises: callers pass the *negated* fitness to `tell`; everything
a user sees (logs, exports) stays "higher is better".
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import optax
from evosax.algorithms.distribution_based import distribution_based_algorithms
from evosax.core.fitness_shaping import (
    centered_rank_fitness_shaping_fn,
    identity_fitness_shaping_fn,
    standardize_fitness_shaping_fn,
)

from discovery.config import DiscoveryConfig, DiscoveryError

SHAPING_FNS = {
    "centered_rank": centered_rank_fitness_shaping_fn,
    "z_score": standardize_fitness_shaping_fn,
    "none": identity_fitness_shaping_fn,
}


def check_strategy_name(name: str) -> None:
    """DiscoveryError naming the closest evosax strategy if `name` is unknown."""
    if name not in distribution_based_algorithms:
        close = difflib.get_close_matches(name, list(distribution_based_algorithms), n=2)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise DiscoveryError(
            f"unknown ES strategy {name!r}; {hint}choose an evosax distribution-based "
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
    return es, params


def strategy_sigma(state: Any) -> Any:
    """The current search std (scalar or per-dimension) of an evosax state, or None."""
    for name in ("std", "sigma"):
        if hasattr(state, name):
            return getattr(state, name)
    return None
