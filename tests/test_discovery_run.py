"""Discovery on the real pipeline with a tiny inner budget: CLI run + export,
bitwise resume, a NaN member, sharding over 4 CPU devices, two processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from driftlab.algorithms.drift_io import load_drift
from driftlab.cli import main
from driftlab.discovery.loop import Discovery, run_discovery

SCRIPTS = Path(__file__).parent / "discovery_scripts"
sys.path.insert(0, str(SCRIPTS))
from shard_generation import config as tiny_config  # noqa: E402

TINY = ["--set", "inner.total_timesteps=1024", "--set", "inner.num_envs=4",
        "--set", "inner.num_steps=32", "--set", "inner.update_epochs=2",
        "--set", "inner.num_minibatches=2", "--set", "inner.actor_hidden=[16]",
        "--set", "inner.critic_hidden=[16]", "--set", "population=8", "--set", "eval_seeds=2",
        "--set", "eval_every=2", "--set", "init_drift=null", "--no-progress"]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_resume_is_bitwise_identical_and_exports_load(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    base = ["discover", "--preset", "cartpole-tiny", *TINY]
    assert main([*base, "--set", "generations=4", "--out", str(whole)]) == 0
    assert main([*base, "--set", "generations=2", "--out", str(split)]) == 0
    assert [r["generation"] for r in records(split)] == [1, 2]
    assert main(["discover", "--resume", str(split), "--set", "generations=4",
                 "--no-progress"]) == 0
    # The full ES state + keys + generation counter, byte for byte.
    assert (whole / "checkpoints/gen_000004.ckpt").read_bytes() == \
        (split / "checkpoints/gen_000004.ckpt").read_bytes()
    assert (whole / "drift.params.msgpack").read_bytes() == \
        (split / "drift.params.msgpack").read_bytes()
    logged = records(split)
    assert [r["generation"] for r in logged] == [1, 2, 3, 4]
    for key in ("fitness_mean", "fitness_max", "fitness_min", "fitness_std", "best_so_far",
                "sigma", "nan_count", "seconds"):
        assert key in logged[-1]
    assert set(logged[-1]["eval"]) == {"gymnax/CartPole-v1"}
    # Exports load as `driftlab train --drift RUN_DIR` does.
    drift, params = load_drift(whole)
    assert drift.spec["kind"] == "lpo" and params["w_in"].shape == (8, 128)
    best, _ = load_drift(whole / "drift_best.json")
    assert best.spec == drift.spec


def test_nan_member_ranks_worst_and_run_continues(tmp_path):
    disc = Discovery(tiny_config(8))
    original = disc.population_returns

    def poisoned(population, keys, mask):  # member 2's inner run "diverges"
        return original(population, keys, mask).at[2].set(jnp.nan)

    disc.population_returns = poisoned
    _, info = disc.step(disc.init())
    raw, cleaned = np.asarray(info["fitness"]), np.asarray(info["clean_fitness"])
    assert np.isnan(raw[2]) and int(info["nan_count"]) == 1
    assert cleaned[2] < np.delete(cleaned, 2).min()
    config = tiny_config(8).__class__.from_dict({**tiny_config(8).to_dict(), "generations": 2})
    with pytest.warns(UserWarning, match="1 member"):
        outcome = run_discovery(config, tmp_path, progress=False, discovery=disc)
    assert outcome.generations == 2
    assert [r["nan_count"] for r in records(tmp_path)] == [1, 1]
    assert np.all(np.isfinite(np.asarray(outcome.state.es_state.mean)))


def _run_script(args: list[str], env: dict | None = None, timeout: int = 300) -> list[dict]:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=SCRIPTS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line[len("RESULT "):]) for line in proc.stdout.splitlines()
            if line.startswith("RESULT ")]


@pytest.mark.slow
def test_generation_on_four_devices_matches_one_and_is_sharded():
    (out,) = _run_script(["shard_generation.py", "8"],
                         env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert out["devices"] == 4
    np.testing.assert_allclose(out["all"]["fitness"], out["one"]["fitness"], rtol=1e-5)
    assert out["all"]["spec"] == "P('pop',)"
    assert out["all"]["shard_devices"] == [0, 1, 2, 3] and out["all"]["shard_rows"] == [2]
    assert out["one"]["shard_devices"] == [0] and out["one"]["shard_rows"] == [8]


@pytest.mark.slow
def test_two_processes_share_one_population():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = str(sock.getsockname()[1])
    procs = [subprocess.Popen([sys.executable, "multihost_generation.py", "2", str(i), port],
                              cwd=SCRIPTS, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
        outs += [json.loads(x[7:]) for x in stdout.splitlines() if x.startswith("RESULT ")]
    (single,) = _run_script(["multihost_generation.py", "1", "0"])
    assert sorted(o["process"] for o in outs) == [0, 1]
    for out in outs:
        assert out["processes"] == 2 and out["devices"] == 2
        assert out["local_rows"] == 4  # each process trains half of the 8 members
        np.testing.assert_allclose(out["fitness"], single["fitness"], rtol=1e-5)
