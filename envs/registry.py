"""`make()` and the list of environment ids."""

from __future__ import annotations

import difflib
from typing import Any

from envs.base import Environment
from envs.brax_backend import BRAX_NAMES, BraxEnv
from envs.gymnax_backend import GYMNAX_IDS, GymnaxEnv
from envs.wrappers import EpisodeStatistics


class UnknownEnvironmentError(ValueError):
    """Raised for an environment id that is not registered."""


def list_envs() -> list[str]:
    """Every id `make` accepts, gymnax first, then Brax."""
    return [f"gymnax/{name}" for name in GYMNAX_IDS] + [f"brax/{n}" for n in BRAX_NAMES]


def _unknown(env_id: str) -> UnknownEnvironmentError:
    ids = list_envs()
    # Match on the bare name too, so "CartPole-v1" suggests "gymnax/CartPole-v1".
    by_name = {i.split("/", 1)[1].lower(): i for i in ids}
    close = difflib.get_close_matches(env_id, ids, n=3, cutoff=0.5)
    close += [
        by_name[n]
        for n in difflib.get_close_matches(env_id.split("/")[-1].lower(), by_name, n=3, cutoff=0.5)
    ]
    close = list(dict.fromkeys(close))[:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UnknownEnvironmentError(
        f"unknown environment {env_id!r}{hint} (`driftlab envs` lists all ids)"
    )


def make(env_id: str, **options: Any) -> Environment:
    """Build one (unbatched) environment with episode statistics.

    Options: `episode_length` (time limit in steps) for every backend;
    `backend` ("spring" by default) and `action_repeat` for Brax; anything else
    is passed to the backend's constructor.
    """
    backend, _, name = env_id.partition("/")
    if backend == "gymnax" and name in GYMNAX_IDS:
        if "backend" in options:
            raise ValueError(f"{env_id} has no `backend` option; it is for brax/* envs only")
        env: Environment = GymnaxEnv(name, **options)
    elif backend == "brax" and name in BRAX_NAMES:
        env = BraxEnv(name, **options)
    else:
        raise _unknown(env_id)
    return EpisodeStatistics(env)
