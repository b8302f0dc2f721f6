"""`drifts --ship` and run directories refuse bad inputs in one line (exit status 2,
no traceback, nothing written): a held-out env the run trained or validated on, a
shipped drift's folder given as the run, an empty --dest; an --out another process
is writing, or one holding an interrupted, finished or discovery run, says which and
how to go on. A stopped train run is marked INCOMPLETE, and compare refuses it."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from driftlab.cli import main
from driftlab.rundir import (
    INCOMPLETE_NAME,
    LOCK_NAME,
    held_locks,
    hold_lock,
    occupied_message,
    releasing_new_locks,
    stop_note,
)

CARTPOLE = "gymnax/CartPole-v1"
ACROBOT = "gymnax/Acrobot-v1"
TRAIN = ["train", "--algo", "ppo", "--env", CARTPOLE, "--timesteps", "2048", "--no-progress"]


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes): what "nothing changed" compares."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line(capsys, argv: list[str], code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny finished discovery run (meta-trained on CartPole), built once."""
    out = tmp_path_factory.mktemp("ship") / "run"
    assert main(["discover", "--preset", "cartpole-tiny", "--set", "population=2",
                 "--set", "inner.total_timesteps=1024", "--set", "eval_seeds=1",
                 "--set", "generations=1", "--no-progress", "--out", str(out)]) == 0
    return out


# ---- drifts --ship --------------------------------------------------------------------

def test_heldout_env_that_the_run_meta_trained_or_validated_on_is_refused(run, tmp_path, capsys):
    dest = tmp_path / "shipdest"
    before = _tree(run)
    err = _one_line(capsys, ["drifts", "--ship", str(run), "--name", "s2", "--heldout", CARTPOLE,
                             "--dest", str(dest)])
    assert f"--heldout {CARTPOLE} is one of the run's meta-training envs" in err
    assert not dest.exists() and _tree(run) == before
    # a run whose config has validation envs: they are not held out either
    validated = tmp_path / "validated"
    shutil.copytree(run, validated)
    config = yaml.safe_load((validated / "config.yaml").read_text())
    config["discovery"]["validation_envs"] = [ACROBOT]
    (validated / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    before = _tree(validated)
    err = _one_line(capsys, ["drifts", "--ship", str(validated), "--name", "s3", "--heldout",
                             ACROBOT, "--dest", str(dest)])
    assert f"--heldout {ACROBOT} is one of the run's validation envs" in err
    assert not dest.exists() and _tree(validated) == before


def test_a_shipped_drift_folder_is_not_a_run_to_ship(run, tmp_path, capsys):
    dest = tmp_path / "shipdest"
    assert main(["drifts", "--ship", str(run), "--name", "lpo-tiny", "--dest", str(dest)]) == 0
    capsys.readouterr()
    shipped = dest / "lpo-tiny"
    assert (shipped / "drift.json").is_file() and (shipped / "provenance.yaml").is_file()
    before = _tree(dest)
    err = _one_line(capsys, ["drifts", "--ship", str(shipped), "--name", "lpo-tiny", "--dest",
                             str(dest), "--replace"])
    assert f"{shipped} is already a shipped drift" in err
    assert "ship from the discovery (or distill) run directory it came from" in err
    assert "does not exist" not in err and _tree(dest) == before


def test_shipping_into_the_run_itself_is_refused(run, tmp_path, capsys):
    copy = tmp_path / "runcopy"
    shutil.copytree(run, copy)
    before = _tree(copy)
    err = _one_line(capsys, ["drifts", "--ship", str(copy), "--name", "runcopy", "--dest",
                             str(tmp_path), "--replace"])
    assert "is the run being shipped" in err and _tree(copy) == before


@pytest.mark.parametrize("argv, message", [
    (["--dest", ""], "--dest is empty"),
    (["--dest", "  "], "--dest is empty"),
])
def test_empty_dest_is_refused_and_nothing_is_written(run, capsys, argv, message):
    from driftlab.algorithms.shipped import _SOURCE_TREE

    before = sorted(p.name for p in _SOURCE_TREE.iterdir()) if _SOURCE_TREE.is_dir() else []
    err = _one_line(capsys, ["drifts", "--ship", str(run), "--name", "q2c", *argv])
    assert message in err
    after = sorted(p.name for p in _SOURCE_TREE.iterdir()) if _SOURCE_TREE.is_dir() else []
    assert after == before and "q2c" not in after


def test_empty_ship_is_refused_not_a_listing(capsys):
    err = _one_line(capsys, ["drifts", "--ship", "", "--name", "x"])
    assert "--ship is empty" in err


# ---- run directories ------------------------------------------------------------------

def _train_dir(path: Path, finished: bool = False, sweep: bool = False) -> Path:
    """What `driftlab train` leaves: killed (no summary.json) or finished."""
    path.mkdir(parents=True)
    config = {"command": "train", "env": CARTPOLE, "algo": "ppo", "seeds": 1, "seed": 0}
    if sweep:
        config["sweep"] = {"grid": {"learning_rate": [1e-3, 3e-4]}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "metrics.jsonl").write_text('{"update": 1, "timesteps": 256}\n')
    (path / LOCK_NAME).write_text("driftlab train (pid 1)\n")
    if finished:
        (path / "summary.json").write_text('{"env": "gymnax/CartPole-v1"}\n')
    return path


def test_out_that_another_process_writes_names_the_holder(tmp_path, capsys):
    twin = _train_dir(tmp_path / "twin")
    fresh = tmp_path / "fresh"  # only the lock so far: the other writer has just begun
    fresh.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from driftlab.rundir import hold_lock; "
        f"hold_lock({str(twin)!r}, 'driftlab train'); "
        f"hold_lock({str(fresh)!r}, 'driftlab train'); print('held', flush=True); "
        "time.sleep(120)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for path in (twin, fresh):
            before = _tree(path)
            err = _one_line(capsys, [*TRAIN, "--out", str(path)])
            assert f"output directory {path} is in use by driftlab train (pid {holder.pid})" in err
            assert "--resume" not in err and _tree(path) == before
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("setup, verb, phrase, absent", [
    ("killed", "train", "it holds an interrupted train run (no summary.json); `driftlab train "
     "--rerun {p} --out NEW` trains it again, or delete it", "--resume"),
    ("killed", "discover", "; or choose a new --out", "--resume it"),
    ("sweep", "discover", "an interrupted train run (no summary.json); train the sweep again "
     "with a new --out, or delete it", "--rerun"),
    ("finished", "train", "it holds a finished train run; choose a new --out", "--resume"),
    ("discovery", "train", "it holds a discovery run; continue it with `driftlab discover "
     "--resume {p}`", "(or --resume it)"),
    ("evaluation", "train", "it holds an evaluation (`driftlab evaluate ... --out {p} --resume`",
     "(or --resume it)"),
    ("evaluation", "evaluate", "is not empty; choose a new --out (or --resume it)", "train"),
    ("other", "train", "is not empty; choose a new --out", "--resume"),
])
def test_occupied_out_says_what_it_holds_and_the_way_on(run, tmp_path, setup, verb, phrase,
                                                         absent):
    path = tmp_path / "dir"
    if setup in ("killed", "finished", "sweep"):
        _train_dir(path, finished=setup == "finished", sweep=setup == "sweep")
    elif setup == "discovery":
        path = run
    else:
        path.mkdir()
        name = "evaluation.yaml" if setup == "evaluation" else "keep.txt"
        (path / name).write_text("command: evaluate\n")
    message = occupied_message(path, verb)
    assert phrase.format(p=path) in message and absent not in message, message
    assert "\n" not in message


def test_train_over_a_killed_run_is_one_line_and_changes_nothing(run, tmp_path, capsys):
    killed = _train_dir(tmp_path / "killed_run")
    for target, phrase in ((killed, f"`driftlab train --rerun {killed} --out NEW` trains it "
                                    "again, or delete it"),
                           (run, f"continue it with `driftlab discover --resume {run}`")):
        before = _tree(target)
        err = _one_line(capsys, [*TRAIN, "--out", str(target)])
        assert phrase in err and "(or --resume it)" not in err
        assert _tree(target) == before


def test_a_run_released_by_an_exception_is_marked_incomplete(tmp_path):
    killed = _train_dir(tmp_path / "stopped")
    done = _train_dir(tmp_path / "done", finished=True)
    with pytest.raises(KeyboardInterrupt) as info, releasing_new_locks():
        hold_lock(killed, "driftlab train")
        hold_lock(done, "driftlab train")
        raise KeyboardInterrupt
    assert held_locks() == set()
    assert info.value.incomplete_runs == [str(killed)]
    assert any("--rerun" in note for note in info.value.__notes__)
    marker = (killed / INCOMPLETE_NAME).read_text()
    assert "no summary.json" in marker and f"driftlab train --rerun {killed} --out NEW" in marker
    assert not (done / INCOMPLETE_NAME).exists()
    note = stop_note(info.value)
    assert note.startswith(f"; {killed} is incomplete") and "\n" not in note
    assert stop_note(info.value, verb="evaluate") == "" and stop_note(None) == ""


def test_sigint_of_train_leaves_a_marked_run_that_compare_refuses(tmp_path, capsys):
    out = tmp_path / "stopped"
    # A shell's background job ignores SIGINT, and its children inherit that: the child
    # takes SIGINT's default back before it becomes `python -m driftlab.cli train ...`.
    exec_cli = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                "os.execv(sys.executable, [sys.executable, '-m', 'driftlab.cli', *sys.argv[1:]])")
    proc = subprocess.Popen(
        [sys.executable, "-c", exec_cli, "train", "--algo", "ppo", "--env", CARTPOLE,
         "--timesteps", "2e6", "--no-progress", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        metrics = out / "metrics.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.is_file() and metrics.stat().st_size > 0:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be stopped"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err.strip().splitlines()[-1], err[-2000:]
    assert not (out / "summary.json").exists()
    marker = (out / INCOMPLETE_NAME).read_text()
    assert f"`driftlab train --rerun {out} --out NEW` trains it again, or delete it" in marker
    before = _tree(out)
    err = _one_line(capsys, ["compare", str(out), "--out", str(tmp_path / "cmp")])
    assert "incomplete" in err and not (tmp_path / "cmp").exists()
    err = _one_line(capsys, [*TRAIN, "--out", str(out)])
    assert "it holds an interrupted train run" in err and "--rerun" in err
    assert _tree(out) == before
