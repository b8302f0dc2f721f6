"""Overrides a discovery preset would silently ignore: `--set inner.KEY` reaches
every env through `inner:`, but an env whose `inner_per_env:` entry sets KEY keeps
its own value (the more specific setting wins, `discovery_settings.resolve_discovery_settings`).
A smoke run's `--set inner.total_timesteps=16384` on a preset with per-env budgets
would otherwise train at the preset's budgets without a word."""

from __future__ import annotations

from typing import Any

from driftlab.errors import DriftlabError


def check_not_shadowed(raw: dict[str, Any], overrides: dict[str, Any]) -> None:
    """A DriftlabError naming the envs an override of `inner.KEY` would not reach
    because the preset or file (`raw`) sets KEY for them under `inner_per_env`
    (unless `overrides` sets it there too), and the `--set` that reaches them."""
    inner = overrides.get("inner")
    per_env = raw.get("inner_per_env")
    if not isinstance(inner, dict) or not isinstance(per_env, dict):
        return
    given = overrides.get("inner_per_env")
    given = given if isinstance(given, dict) else {}
    for key in inner:
        shadowed = [env for env, settings in per_env.items()
                    if isinstance(settings, dict) and key in settings
                    and not (isinstance(given.get(env), dict) and key in given[env])]
        if shadowed:
            raise DriftlabError(
                f"--set inner.{key} does not reach {', '.join(shadowed)}: the preset sets "
                f"{key} for them under inner_per_env, which wins; set it there too, e.g. "
                f"--set inner_per_env.{shadowed[0]}.{key}=...")
