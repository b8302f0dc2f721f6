"""One interface over gymnax and Brax environments (see envs/base.py)."""

from driftlab.envs.base import Environment, Wrapper
from driftlab.envs.gymnax_backend import EnvironmentUnavailableError
from driftlab.envs.registry import UnknownEnvironmentError, list_envs, make
from driftlab.envs.spaces import Box, Discrete
from driftlab.envs.wrappers import (
    ClipAction,
    EpisodeStatistics,
    NormalizeObservation,
    NormalizeReward,
    ScaleReward,
    Vectorized,
)

list = list_envs  # noqa: A001 - `envs.list()` reads naturally at call sites

__all__ = [
    "Box",
    "ClipAction",
    "Discrete",
    "Environment",
    "EnvironmentUnavailableError",
    "EpisodeStatistics",
    "NormalizeObservation",
    "NormalizeReward",
    "ScaleReward",
    "UnknownEnvironmentError",
    "Vectorized",
    "Wrapper",
    "list_envs",
    "make",
]
