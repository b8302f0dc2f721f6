"""`make()` and the list of environment ids."""

from __future__ import annotations

import contextlib
import difflib
import inspect
import io
import math
import warnings
from typing import Any

from driftlab.envs.base import Environment
from driftlab.envs.brax_backend import BRAX_BACKENDS, BRAX_NAMES, ONLY_BACKENDS, BraxEnv
from driftlab.envs.gymnax_backend import GYMNAX_IDS, GymnaxEnv
from driftlab.envs.wrappers import EpisodeStatistics
from driftlab.hints import did_you_mean, suggestion


class UnknownEnvironmentError(ValueError):
    """Raised for an environment id that is not registered."""


class EnvironmentOptionError(UnknownEnvironmentError):
    """An env option `make` does not accept for that env, or a value of the wrong
    type; the message names the option and the accepted ones. (A subclass of
    UnknownEnvironmentError, so every caller that reports that one as a user
    error reports this one too.)"""


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
    hint = suggestion(close)
    return UnknownEnvironmentError(
        f"unknown environment {env_id!r}{hint}; `driftlab envs` lists all ids"
    )


def _constructor_options(factory: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """{name: default} of the keyword options `factory` takes (empty if unknown)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skip}


def env_options(env_id: str) -> dict[str, Any]:
    """{option: default} that `make(env_id, **options)` accepts: `episode_length`
    for every env; for gymnax the env class's constructor arguments; for Brax
    `backend`, `action_repeat`, the env's own arguments and its pipeline's
    (`n_frames`, `debug`). Importing Brax happens only for a brax/* id."""
    backend, _, name = env_id.partition("/")
    accepted: dict[str, Any] = {"episode_length": None}
    if backend == "gymnax" and name in GYMNAX_IDS:
        from gymnax import registration

        factory = getattr(registration, "_registry", {}).get(name)
        accepted.update(_constructor_options(factory) if factory is not None else {})
    elif backend == "brax" and name in BRAX_NAMES:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from brax import envs as brax_envs
            from brax.envs.base import PipelineEnv

        accepted.update({"backend": None, "action_repeat": 1})
        factory = getattr(brax_envs, "_envs", {}).get(name)
        if factory is not None:
            accepted.update(_constructor_options(factory, skip=("backend",)))
        accepted.update(_constructor_options(PipelineEnv.__init__, skip=("self", "sys", "backend")))
    else:
        raise _unknown(env_id)
    return accepted


def _type_error(env_id: str, key: str, value: Any, expected: str) -> EnvironmentOptionError:
    return EnvironmentOptionError(f"env_options.{key} of {env_id} must be {expected}, "
                                  f"got {value!r}")


def check_env_options(env_id: str, options: dict[str, Any]) -> dict[str, Any]:
    """`options` checked against `env_options(env_id)`: an unknown name, or a value
    whose type differs from the option's default, is an EnvironmentOptionError
    naming the env's accepted options. Returns them with whole numbers given as
    floats (`1e3`) made ints."""
    accepted = env_options(env_id)
    unknown = [key for key in options if key not in accepted]
    if unknown:
        hint = did_you_mean(unknown[0], accepted, quote=True)
        if "backend" in unknown:
            hint = " (the `backend` option is for brax/* envs only)"
        raise EnvironmentOptionError(
            f"unknown env option(s) {', '.join(map(repr, unknown))} for {env_id}{hint}; "
            f"it accepts {', '.join(accepted)}")
    checked = dict(options)
    for key, value in options.items():
        default = accepted[key]
        if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(
                default, bool):
            try:  # YAML reads `1e3` as a string
                value = float(value)
            except ValueError:
                pass
            else:
                checked[key] = value
        if key in ("episode_length", "action_repeat"):
            default = 1
        if value is None and accepted[key] is None:
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise _type_error(env_id, key, value, "true or false (bool)")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and float(value).is_integer()):
                raise _type_error(env_id, key, value, "a whole number (int)")
            checked[key] = int(value)
            if key in ("episode_length", "action_repeat") and checked[key] < 1:
                raise _type_error(env_id, key, value, "a whole number >= 1")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _type_error(env_id, key, value, "a number (float)")
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise _type_error(env_id, key, value, "a string (str)")
    if "backend" in checked:
        supported = ONLY_BACKENDS.get(env_id.partition("/")[2], BRAX_BACKENDS)
        if checked["backend"] not in supported:
            raise EnvironmentOptionError(f"env_options.backend {checked['backend']!r} is not "
                                         f"available for {env_id}; choose one of "
                                         f"{', '.join(supported)}")
    return checked


def make(env_id: str, **options: Any) -> Environment:
    """Build one (unbatched) environment with episode statistics.

    Options: `episode_length` (time limit in steps) for every backend;
    `backend` ("spring" by default) and `action_repeat` for Brax; anything else
    is passed to the backend's constructor. Options are checked first
    (`check_env_options`): an unknown one or a value of the wrong type is an
    EnvironmentOptionError naming what the env accepts.
    """
    backend, _, name = env_id.partition("/")
    if not ((backend == "gymnax" and name in GYMNAX_IDS)
            or (backend == "brax" and name in BRAX_NAMES)):
        raise _unknown(env_id)
    if options:
        options = check_env_options(env_id, options)
    try:
        if backend == "gymnax":
            env: Environment = GymnaxEnv(name, **options)
        else:
            env = BraxEnv(name, **options)
    except (TypeError, ValueError) as err:
        if not options or isinstance(err, UnknownEnvironmentError):
            raise
        raise EnvironmentOptionError(f"{env_id} cannot be built with env_options {options} "
                                     f"({type(err).__name__}: {err})") from None
    return EpisodeStatistics(env)
