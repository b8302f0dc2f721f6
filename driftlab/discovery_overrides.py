"""Overrides a discovery preset would silently ignore. Each env's inner settings are
its training preset, then `inner:`, then `inner_per_env: {ENV: ...}`, then
`train: {ENV: ...}` (a run's resolved settings, e.g. a --config copied from a run's
config.yaml); the more specific layer wins (`discovery_settings.resolve_discovery_settings`).
So `--set inner.KEY` does not reach an env whose preset or file sets KEY in a later
layer, nor `--set inner_per_env.ENV.KEY` one whose `train:` sets it. A smoke run's
`--set inner.total_timesteps=16384` on a preset with per-env budgets trained at the
preset's budgets without a word; now it is refused in one line."""

from __future__ import annotations

from typing import Any

from driftlab.errors import DriftlabError
from driftlab.presets import flatten_dotted

# The layers of an env's inner settings after its training preset, least specific first.
LAYERS = ("inner", "inner_per_env", "train")


def _sets(mapping: Any, dotted: str) -> bool:
    """Whether `mapping` sets the dotted key or replaces it (a non-mapping value at a
    prefix)."""
    for key in dotted.split("."):
        if not isinstance(mapping, dict) or key not in mapping:
            return False
        mapping = mapping[key]
        if not isinstance(mapping, dict):
            return True
    return True


def _per_env(raw: dict[str, Any], layer: str) -> dict[str, Any]:
    value = raw.get(layer)
    return value if isinstance(value, dict) else {}


def check_not_shadowed(raw: dict[str, Any], overrides: dict[str, Any]) -> None:
    """A DriftlabError naming the envs an `--set inner.KEY` (or `inner_per_env.ENV.KEY`)
    override would not reach because the preset or file (`raw`) sets KEY for them in a
    more specific layer (`inner_per_env`, `train`) that `overrides` leaves alone, and the
    `--set` that reaches them."""
    sources: list[tuple[str, str | None, dict[str, Any]]] = []
    if isinstance(overrides.get("inner"), dict):
        sources.append(("inner", None, overrides["inner"]))
    for env, settings in _per_env(overrides, "inner_per_env").items():
        if isinstance(settings, dict):
            sources.append(("inner_per_env", env, settings))
    for layer, only_env, settings in sources:
        for key in flatten_dotted(settings):
            for shadow in LAYERS[LAYERS.index(layer) + 1:]:
                given = _per_env(overrides, shadow)
                shadowed = [env for env, values in _per_env(raw, shadow).items()
                            if (only_env is None or env == only_env) and _sets(values, key)
                            and not _sets(given.get(env), key)]
                if shadowed:
                    what = f"inner.{key}" if only_env is None else f"inner_per_env.{only_env}.{key}"
                    raise DriftlabError(
                        f"--set {what} does not reach {', '.join(shadowed)}: the preset or "
                        f"config file sets {key} for them under {shadow}, which wins; set it "
                        f"there too, e.g. --set {shadow}.{shadowed[0]}.{key}=...")
