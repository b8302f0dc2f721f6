"""Shared test set-up: JAX's persistent compilation cache (repeat runs skip
most XLA compiles) and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import jax

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = os.environ.get("DRIFTLAB_JAX_CACHE", str(ROOT / ".jax_cache"))

jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
