"""SIGKILL at random moments: a real `driftlab discover` process killed (in a
generation, at a checkpoint write, before its first checkpoint) and resumed
ends byte-identical to an uninterrupted run, with no temporary files and no
torn metrics lines; a killed `driftlab train` run is recognised as incomplete."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftlab.cli import main

TINY = ["--set", "inner.total_timesteps=1024", "--set", "inner.num_envs=4",
        "--set", "inner.num_steps=32", "--set", "inner.update_epochs=1",
        "--set", "inner.num_minibatches=2", "--set", "inner.actor_hidden=[16]",
        "--set", "inner.critic_hidden=[16]", "--set", "population=8", "--set", "eval_seeds=2",
        "--set", "eval_every=2", "--set", "generations=16", "--no-progress"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "driftlab.cli", *args]


def _assert_clean(run: Path) -> None:
    leftovers = [p for p in run.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert not leftovers, leftovers
    if (run / "metrics.jsonl").is_file():
        for line in (run / "metrics.jsonl").read_text().splitlines():
            json.loads(line)  # every line whole


@pytest.mark.slow
def test_discover_killed_at_random_moments_resumes_byte_identical(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # Run twice: the first fills the compilation cache, the second (timed) is as long as
    # the killed runs will be, so the kill moments land inside them; and it is the same.
    for out in (tmp_path / "warmup", whole):
        tick = time.monotonic()
        done = subprocess.run(_cli("discover", "--preset", "cartpole-tiny", "--out", str(out),
                                   *TINY), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        duration = time.monotonic() - tick
    assert (tmp_path / "warmup" / "drift.json").read_bytes() == (whole / "drift.json").read_bytes()
    rng = random.Random(0)
    fresh = _cli("discover", "--preset", "cartpole-tiny", "--out", str(killed), *TINY)
    resume = _cli("discover", "--resume", str(killed), "--no-progress")
    kills = 0
    for _attempt in range(12):
        # Killed before it wrote config.yaml (still validating): nothing to resume, start again.
        command = resume if (killed / "config.yaml").is_file() else fresh
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        # Kill moments spread over a run's length: during start-up, before the first
        # checkpoint, inside generations and at checkpoint writes.
        time.sleep(rng.uniform(0.15, 0.6) * duration)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            _assert_clean_after_kill(killed)
        else:
            assert proc.returncode == 0, proc.stderr.read()[-2000:]
            break
    else:
        command = resume if (killed / "config.yaml").is_file() else fresh
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    assert kills >= 2
    _assert_clean(killed)
    for name in ("checkpoints/gen_000016.ckpt", "drift.params.msgpack", "drift.json",
                 "drift_best.params.msgpack"):
        assert (whole / name).read_bytes() == (killed / name).read_bytes(), name
    metrics = [json.loads(x)["generation"] for x in
               (killed / "metrics.jsonl").read_text().splitlines()]
    assert metrics == list(range(1, 17))


def _assert_clean_after_kill(run: Path) -> None:
    """What a kill may leave: a torn last metrics line (resume truncates it) and a
    temporary file of an interrupted atomic write (never read); never a torn
    checkpoint or export (those are renamed into place whole)."""
    for ckpt in (run / "checkpoints").glob("*.ckpt") if (run / "checkpoints").is_dir() else []:
        assert ckpt.stat().st_size > 0
    if (run / "drift.json").is_file():
        json.loads((run / "drift.json").read_text())


@pytest.mark.slow
def test_killed_train_run_is_recognised_as_incomplete(tmp_path, capsys):
    run = tmp_path / "train"
    env = {**os.environ}
    proc = subprocess.Popen(_cli("train", "--algo", "ppo", "--env", "gymnax/CartPole-v1",
                                 "--timesteps", "2e6", "--out", str(run), "--no-progress"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once it is writing metrics
        if (run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").stat().st_size > 0:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "summary.json").exists()
    for argv in (["compare", str(run), "--out", str(tmp_path / "cmp")],):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "incomplete" in err[0], err


@pytest.mark.slow
def test_sigterm_ends_discover_like_ctrl_c_and_it_resumes(tmp_path):
    """SIGTERM (a scheduler's stop) gives one line and exit 143, leaves no temporary
    files or torn lines, and the run resumes to the end."""
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli("discover", "--preset", "cartpole-tiny", "--out", str(run),
                                 *TINY), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        metrics = run / "metrics.jsonl"
        if metrics.is_file() and metrics.read_text().count("\n") >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err and "terminated (SIGTERM)" in lines[-1], err[-2000:]
    _assert_clean(run)
    done = subprocess.run(_cli("discover", "--resume", str(run), "--no-progress"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in records] == list(range(1, 17))
