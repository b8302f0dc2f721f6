"""Speed a user feels: one compile per `driftlab train` run, the persistent
compilation cache of the CLI, and no Brax/MuJoCo import for gymnax training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import Lowerings

from driftlab import training
from driftlab.cli import OFF_VALUES, resolve_cache_dir

ROOT = Path(__file__).resolve().parent.parent
ENV = "gymnax/CartPole-v1"
# 13 updates (a prime) of 4 envs x 16 steps, in chunks of 4: 4 + 4 + 4 + 1.
SMALL = {"num_envs": 4, "num_steps": 16, "update_epochs": 2, "num_minibatches": 2}
UPDATES = 13


def test_chunk_length_needs_no_divisor():
    assert training.chunk_length(122, 20) == 7  # 17 chunks of 7, then 3: one program
    assert training.chunk_length(13, 4) == 4
    assert training.chunk_length(3, 20) == 1
    assert training.chunk_length(5, 1) == 5


def test_train_run_compiles_its_loop_once_and_logs_every_update(tmp_path):
    settings = training.resolve_settings(ENV, overrides=SMALL, timesteps=UPDATES * 64)
    with Lowerings() as lowered:
        outcome = training.train_run(ENV, "ppo", settings, seeds=2, seed=5, chunks=4,
                                     out=tmp_path / "run", progress=False, plot=False)
    loops = [n for n in lowered.names if "run_chunk" in n]
    assert loops == ["jit(run_chunk)"], lowered.names

    assert outcome.returns.shape == (2, UPDATES)
    np.testing.assert_array_equal(outcome.timesteps, np.arange(1, UPDATES + 1) * 64)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in lines] == list(range(1, UPDATES + 1))
    assert [r["timesteps"] for r in lines] == [64 * u for u in range(1, UPDATES + 1)]

    # The same updates as one unchunked scan (different XLA programs: float rounding).
    env, config, drift, params = training.build(ENV, "ppo", settings)
    trainer = training.Trainer(env, config, drift)
    keys = jax.random.split(jax.random.key(5), 2)
    whole = jax.jit(jax.vmap(lambda k: trainer.train(k, params).metrics))(keys)
    assert whole["episode_return"].shape == (2, UPDATES)
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl"):
        np.testing.assert_allclose([r[name] for r in lines], np.asarray(whole[name]).mean(0),
                                   rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(outcome.returns, np.asarray(whole["episode_return"]),
                               rtol=1e-4, atol=1e-4)


def test_train_run_is_deterministic_for_a_seed(tmp_path):
    settings = training.resolve_settings(ENV, overrides=SMALL, timesteps=7 * 64)
    a = training.train_run(ENV, "ppo", settings, seed=3, chunks=3, out=tmp_path / "a",
                           progress=False, plot=False)
    b = training.train_run(ENV, "ppo", settings, seed=3, chunks=3, out=tmp_path / "b",
                           progress=False, plot=False)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert (tmp_path / "a" / "params.msgpack").read_bytes() == \
        (tmp_path / "b" / "params.msgpack").read_bytes()


# ---- the persistent compilation cache ----

def test_cache_dir_default_and_overrides(tmp_path):
    home = {"HOME": str(tmp_path / "home")}
    path, warning = resolve_cache_dir(home)
    assert path == tmp_path / "home" / ".cache" / "driftlab" / "jax" and path.is_dir()
    assert warning is None
    path, _ = resolve_cache_dir({**home, "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert path == tmp_path / "xdg" / "driftlab" / "jax"
    path, _ = resolve_cache_dir({**home, "DRIFTLAB_JAX_CACHE": str(tmp_path / "mine")})
    assert path == tmp_path / "mine" and path.is_dir()
    for off in ("off", "OFF", "0", "false", "none"):
        assert off.lower() in OFF_VALUES
        assert resolve_cache_dir({**home, "DRIFTLAB_JAX_CACHE": off}) == (None, None)


def test_unwritable_cache_dir_is_one_warning(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path, warning = resolve_cache_dir({"DRIFTLAB_JAX_CACHE": str(blocker / "jax")})
    assert path is None and "\n" not in warning and "cache" in warning


def _cli(args, cache, tmp_path, **env):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("JAX_") and k != "DRIFTLAB_JAX_CACHE"}
    environ.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"), **env)
    if cache is not None:
        environ["DRIFTLAB_JAX_CACHE"] = cache
    return subprocess.run([sys.executable, "-m", "driftlab.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env=environ, timeout=600)


def test_cli_cache_on_by_default_off_and_moved(tmp_path):
    train = ["train", "--algo", "ppo", "--env", ENV, "--timesteps", str(3 * 64), "--chunks", "2",
             "--no-progress", *[f"--set={k}={v}" for k, v in SMALL.items()]]
    default_dir = tmp_path / "xdg" / "driftlab" / "jax"
    moved = tmp_path / "moved"
    proc = _cli([*train, "--out", str(tmp_path / "r1"), "--set=learning_rate=1e-3"], None,
                tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert any(default_dir.iterdir()), "the default cache directory got no entry"
    proc = _cli([*train, "--out", str(tmp_path / "r2"), "--set=learning_rate=2e-3"],
                str(moved), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert any(moved.iterdir())
    before = set(default_dir.iterdir())
    proc = _cli([*train, "--out", str(tmp_path / "r3"), "--set=learning_rate=3e-3"], "off",
                tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert set(default_dir.iterdir()) == before
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = _cli(["envs"], str(blocker / "jax"), tmp_path)
    assert proc.returncode == 0
    assert len([x for x in proc.stderr.splitlines() if "cache" in x]) == 1, proc.stderr


def test_api_switches_the_cache_on_like_the_cli(tmp_path):
    """A notebook or script calling driftlab.api gets the persistent cache too."""
    cache = tmp_path / "cache"
    code = ("import jax\nfrom driftlab import api\n"
            "assert not jax.config.jax_compilation_cache_dir\n"
            f"api.inspect('ppo', compare=[], points=11, out={str(tmp_path / 'i')!r})\n"
            "print(jax.config.jax_compilation_cache_dir)")
    env = {**os.environ, "DRIFTLAB_JAX_CACHE": str(cache), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(cache), proc.stdout


# ---- import time ----

@pytest.mark.parametrize("code", [
    "import driftlab.training",
    "from driftlab.cli import build_parser; build_parser()\n"
    "from driftlab.training import build, resolve_settings\n"
    "from driftlab.algorithms import Trainer\n"
    "env, config, drift, _ = build('gymnax/Breakout-MinAtar', 'ppo',"
    " resolve_settings('gymnax/Breakout-MinAtar'))\n"
    "Trainer(env, config, drift)\n"
    "from driftlab import envs; envs.list_envs()",
])
def test_gymnax_training_imports_no_brax_mujoco_seaborn_or_sympy(code):
    check = code + "\nimport sys\nprint(sorted(m for m in sys.modules" \
                   " if m.split('.')[0] in ('brax', 'mujoco', 'seaborn', 'sympy')))"
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
