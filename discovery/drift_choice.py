"""The `drift:` block of a discovery as one value: which family the ES evolves.

    drift: {kind: lpo, temporal: false, ppo_init: true, hidden: 128}   (the default kind)
    drift: {kind: dpo, alpha: 1.0}          a registered family; options = its factory's
    drift: {kind: distilled, from: FILE}    a distilled formula's constants

`DriftChoice.from_block` reads the block (and the top-level `drift_kind`, `temporal`,
`ppo_init`, `hidden` that configs carried before the block existed); `block()` writes
it back; `validate()` checks it (one line naming the fix).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax

from driftlab.algorithms import ConfigError
from driftlab.algorithms.config import coerce
from driftlab.discovery.errors import DiscoveryError
from driftlab.hints import did_you_mean

# LPO's options with their defaults and types (algorithms/drifts.py `make_drift("lpo")`).
LPO_DEFAULTS: dict[str, Any] = {"temporal": False, "ppo_init": False, "hidden": 128}
LPO_TYPES: dict[str, type] = {"temporal": bool, "ppo_init": bool, "hidden": int}
# Top-level keys of configs written before the block: read into it.
LEGACY_KEYS = ("drift_kind", *LPO_DEFAULTS)


def family_options(kind: str) -> list[str]:
    """The option names of drift family `kind` in a `drift:` block (empty if unknown)."""
    from driftlab.algorithms.drifts import DRIFTS

    if kind == "lpo":
        return list(LPO_DEFAULTS)
    if kind == "distilled":
        return ["from"]
    try:
        parameters = inspect.signature(DRIFTS[kind]).parameters.values()
    except (KeyError, TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _takes(kind: str) -> str:
    names = family_options(kind)
    return f"kind {kind} takes {', '.join(names)}" if names else f"kind {kind} takes no options"


def check_kind(kind: str) -> None:
    """DiscoveryError unless `kind` is a registered drift family with parameters."""
    from driftlab.algorithms.drifts import DRIFTS

    evolvable = sorted(k for k in DRIFTS if k != "none")
    if kind == "none":
        raise DiscoveryError(f"drift kind none has no parameters to evolve; choose one of "
                             f"{', '.join(evolvable)}")
    if kind not in DRIFTS:
        hint = did_you_mean(kind, evolvable)
        raise DiscoveryError(f"unknown drift kind {kind!r}{hint}; the registered families "
                             f"are {', '.join(evolvable)} (register_drift adds more)")


def _not_lpo(key: str, kind: str, where: str = "") -> DiscoveryError:
    return DiscoveryError(f"drift option {key!r} belongs to kind lpo, not {kind}; drop it"
                          f"{where} ({_takes(kind)})")


@dataclass(frozen=True)
class DriftChoice:
    """The family a discovery evolves. `options`: the family's factory arguments
    (LPO: temporal, ppo_init, hidden, always all three; DPO's alpha/beta or PPO's
    eps: the ES start); `source`: kind distilled's `from:` (a drift.json written by
    `driftlab distill`, a distill run directory or a shipped drift name)."""

    kind: str = "lpo"
    options: dict[str, Any] = field(default_factory=lambda: dict(LPO_DEFAULTS))
    source: str | None = None

    @classmethod
    def from_block(cls, block: Any, legacy: Mapping[str, Any] | None = None) -> DriftChoice:
        """From `drift: {kind, ...options}` (kind lpo when absent; `ta-lpo` is lpo
        with temporal) and `legacy`, the pre-block top-level keys (LEGACY_KEYS)."""
        if not isinstance(block if block is not None else {}, Mapping):
            raise DiscoveryError(f"drift must be a mapping like {{temporal: false, ppo_init: "
                                 f"true}} or {{kind: dpo}} (dict), got {block!r}")
        block, legacy = dict(block or {}), dict(legacy or {})
        kind = block.pop("kind", legacy.pop("drift_kind", "lpo"))
        legacy.pop("drift_kind", None)
        if not isinstance(kind, str):
            raise DiscoveryError(f"drift.kind must be a drift family name such as lpo or dpo "
                                 f"(str), got {kind!r}")
        if kind == "ta-lpo":
            kind, block = "lpo", {**block, "temporal": True}
        if kind == "lpo":
            for key in block:
                if key not in LPO_DEFAULTS:
                    raise DiscoveryError(f"unknown drift option {key!r} for kind lpo; use "
                                         f"{', '.join(LPO_DEFAULTS)} (or set drift.kind)")
            given = {**legacy, **block}
            return cls("lpo", {key: coerce(key, given.get(key, default), LPO_TYPES[key],
                                           DiscoveryError)
                               for key, default in LPO_DEFAULTS.items()})
        check_kind(kind)
        for key in block:
            if key in LPO_DEFAULTS:
                raise _not_lpo(key, kind, " from the drift: block")
        for key, value in legacy.items():  # configs wrote them out flat, at their defaults
            if coerce(key, value, LPO_TYPES[key], DiscoveryError) != LPO_DEFAULTS[key]:
                raise _not_lpo(key, kind)
        source = block.pop("from", None)
        if kind != "distilled" and source is not None:
            raise DiscoveryError(f"drift option 'from' is only for kind distilled, not {kind} "
                                 f"({_takes(kind)})")
        if kind == "distilled" and block:
            raise DiscoveryError(f"unknown drift option {next(iter(block))!r} for kind "
                                 f"distilled; {_takes(kind)}")
        return cls(kind, block, source)

    def block(self) -> dict[str, Any]:
        """The `drift:` block as a user writes it: {kind, ...options}."""
        if self.kind == "distilled":
            return {"kind": "distilled", "from": self.source}
        return {"kind": self.kind, **self.options}

    @property
    def algo(self) -> str:
        """The `--algo` name that trains with this family (`ta-lpo` for temporal LPO)."""
        return "ta-lpo" if self.kind == "lpo" and self.options.get("temporal") else self.kind

    def validate(self) -> None:
        """DiscoveryError unless the family exists, has parameters to evolve and
        takes these options."""
        from driftlab.algorithms.drifts import make_drift

        check_kind(self.kind)
        if self.kind == "lpo":
            if self.options["hidden"] < 1:
                raise DiscoveryError(f"hidden must be >= 1, got {self.options['hidden']}")
            return
        if self.kind == "distilled":
            if not (isinstance(self.source, str) and self.source.strip()):
                raise DiscoveryError(
                    "drift kind distilled needs `from:` naming the formula to refine: a "
                    "drift.json written by `driftlab distill`, a distill run directory or a "
                    "shipped drift name, e.g. drift: {kind: distilled, from: "
                    "runs/distill-.../drift.json}")
            return
        try:
            drift = make_drift(self.kind, **self.options)
        except (ConfigError, ValueError, TypeError) as err:
            raise DiscoveryError(f"drift: {err}") from None
        if not jax.tree.leaves(drift.default_params):
            raise DiscoveryError(f"drift kind {self.kind} has no parameters to evolve; "
                                 "choose another family (drift.kind)")
