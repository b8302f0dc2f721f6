"""The discovery's error type (its own module so every discovery module can raise it)."""

from __future__ import annotations

from driftlab.algorithms import ConfigError


class DiscoveryError(ConfigError):
    """A discovery setting that cannot work; the message names the fix.

    Subclasses ConfigError so the CLI already prints it as one line."""
