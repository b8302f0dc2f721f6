"""`driftlab discover --resume RUN` on a run directory whose files were edited,
emptied or removed: exit status 2, one line on stderr naming the problem and the
fix, no traceback, and no file of the run directory changed (bytes and mtimes);
a valid resume still continues the run bit for bit. A stopped discover (Ctrl-C or
SIGTERM) says how to continue it.

One tiny discovery (population 2, one generation) is built per module; each test
works on its own copy.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from driftlab.cli import main

TINY = ["--preset", "cartpole-tiny", "--set", "population=2",
        "--set", "inner.total_timesteps=1024", "--set", "eval_seeds=1", "--no-progress"]
EXPORTS = ["drift.json", "drift.params.msgpack", "drift_best.json",
           "drift_best.params.msgpack", "checkpoints/gen_000002.ckpt"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("built") / "run"
    assert main(["discover", *TINY, "--set", "generations=1", "--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def two_generations(tmp_path_factory) -> Path:
    """The uninterrupted run a resume to generations=2 must repeat bit for bit."""
    run = tmp_path_factory.mktemp("whole") / "run"
    assert main(["discover", *TINY, "--set", "generations=2", "--out", str(run)]) == 0
    return run


@pytest.fixture
def run(built, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(built, copy)
    return copy


def snapshot(root: Path) -> dict[str, tuple[bytes, int] | str]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file()
            else "dir" for p in sorted(root.rglob("*"))}


def refused(run: Path, capsys, phrase: str, *extra: str) -> str:
    """Resume `run`: exit 2, one stderr line holding `phrase`, nothing changed."""
    capsys.readouterr()
    before = snapshot(run)
    code = main(["discover", "--resume", str(run), "--set", "generations=2", "--no-progress",
                 *extra])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and phrase in lines[0], captured.err
    assert "Traceback" not in captured.err + captured.out
    assert snapshot(run) == before
    return lines[0]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_the_started_record_is_a_copy_of_config_yaml(built):
    assert (built / "config.started.yaml").read_bytes() == (built / "config.yaml").read_bytes()


# ---- 1: every top-level key of config.yaml is checked, `preset:` included ----------------
@pytest.mark.parametrize("old, new, key", [
    ("preset: cartpole-tiny\n", "preset: cartpole-cpu\n",
     "changed preset from 'cartpole-tiny' to 'cartpole-cpu'"),
    ("command: discover\n", "command: train\n", "changed command from 'discover' to 'train'"),
    ("preset: cartpole-tiny\n", "preset: cartpole-tiny\nnote: mine\n",
     "changed note from None to 'mine'"),
])
def test_an_edited_top_level_key_is_refused(run, capsys, old, new, key):
    edit(run / "config.yaml", old, new)
    line = refused(run, capsys, key)
    assert "config.started.yaml" in line


# ---- 2: checkpoints but no config.started.yaml ---------------------------------------------
def test_checkpoints_without_the_started_record_are_refused(run, capsys):
    (run / "config.started.yaml").unlink()
    edit(run / "config.yaml", "\n  seed: 0\n", "\n  seed: 5\n")
    line = refused(run, capsys, "has checkpoints but no config.started.yaml, so its settings "
                                "cannot be checked")
    assert "restore" in line


def test_a_run_killed_before_anything_was_recorded_starts_over(run, built, capsys):
    """config.yaml alone (killed right after writing it): the run starts over in place
    with those settings, which it now records in config.started.yaml."""
    for path in [*run.iterdir()]:
        if path.name != "config.yaml":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert main(["discover", "--resume", str(run), "--no-progress"]) == 0
    for name in ["config.started.yaml", "drift.json", "drift.params.msgpack",
                 "checkpoints/gen_000001.ckpt"]:
        assert (run / name).read_bytes() == (built / name).read_bytes(), name


def test_an_empty_started_record_is_refused(run, capsys):
    (run / "config.started.yaml").write_text("")
    refused(run, capsys, "config.started.yaml is empty, so the run's settings cannot be checked")


# ---- 3: an empty or damaged config.yaml ----------------------------------------------------
@pytest.mark.parametrize("text, phrase", [
    ("", "config.yaml is empty"),
    ("\n\n", "config.yaml is empty"),
    ("command: discover\npreset: cartpole-tiny\n", "config.yaml is damaged"),
    ("discovery: [1,\n", "config.yaml is not valid YAML"),
    ("- 1\n", "config.yaml holds a list"),
])
def test_an_empty_or_damaged_config_says_how_to_restore_it(run, capsys, text, phrase):
    (run / "config.yaml").write_text(text)
    line = refused(run, capsys, phrase)
    assert f"cp {run}/config.started.yaml {run}/config.yaml" in line, line
    assert "not from `driftlab discover`" not in line


def test_the_restored_config_resumes_bit_for_bit(run, two_generations, capsys):
    (run / "config.yaml").write_text("")
    refused(run, capsys, "config.yaml is empty")
    shutil.copy(run / "config.started.yaml", run / "config.yaml")  # the fix it names
    assert main(["discover", "--resume", str(run), "--set", "generations=2",
                 "--no-progress"]) == 0
    for name in EXPORTS:
        assert (run / name).read_bytes() == (two_generations / name).read_bytes(), name


def test_an_older_run_without_a_full_record_says_how_to_rebuild(run, capsys):
    """Older runs recorded only the discovery settings in config.started.yaml: they
    resume as before, and a lost config.yaml is rebuilt around that file."""
    started = yaml.safe_load((run / "config.started.yaml").read_text())
    (run / "config.started.yaml").write_text(yaml.safe_dump(started["discovery"],
                                                             sort_keys=False))
    (run / "config.yaml").write_text("")
    refused(run, capsys, f"rebuild it from {run}/config.started.yaml")


# ---- 4: a missing config.yaml ---------------------------------------------------------------
def test_a_missing_config_says_how_to_restore_it(run, capsys):
    (run / "config.yaml").unlink()
    line = refused(run, capsys, "config.yaml is missing")
    assert f"cp {run}/config.started.yaml {run}/config.yaml" in line, line


def test_a_missing_config_and_record_is_named(run, capsys):
    (run / "config.yaml").unlink()
    (run / "config.started.yaml").unlink()
    refused(run, capsys, "no config.started.yaml to restore it from")


def test_a_directory_that_is_no_run_keeps_its_message(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("keep me\n")
    refused(tmp_path, capsys, "has no config.yaml; pass a discovery run directory")


# ---- 5: a stopped discover says how to continue ------------------------------------------
def test_ctrl_c_names_the_resume(run, capsys, monkeypatch):
    from driftlab.discovery import loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "run_discovery", interrupted)
    capsys.readouterr()
    assert main(["discover", "--resume", str(run), "--set", "generations=2",
                 "--no-progress"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("driftlab discover: interrupted;"), err
    assert f"--resume {run}" in err[0], err


def test_sigterm_names_the_resume_and_it_resumes(tmp_path, built):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "driftlab.cli", "discover", *TINY,
                             "--set", "generations=500", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any((out / "checkpoints").glob("*.ckpt")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert proc.returncode == 143, err[-2000:]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert "terminated (SIGTERM)" in lines[0]
    assert f"continue it with `driftlab discover --resume {out}`" in lines[0], lines
    done = max(json.loads(x)["generation"]
               for x in (out / "metrics.jsonl").read_text().splitlines())
    assert main(["discover", "--resume", str(out), "--set", f"generations={done + 1}",
                 "--no-progress"]) == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in records] == list(range(1, done + 2))


def test_the_software_is_recorded_and_a_resume_with_other_software_is_added(run, capsys):
    from driftlab.software import software_record

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["software"] == software_record()  # built in this process
    older = {**config["software"], "commit": "0" * 40, "driftlab": "0.0.1",
             "source": "0123456789abcdef"}
    for name in ("config.yaml", "config.started.yaml"):  # as if started by older code
        data = yaml.safe_load((run / name).read_text())
        (run / name).write_text(yaml.safe_dump({**data, "software": older}))
    # Other software is no reason to refuse a resume, but it is recorded.
    assert main(["discover", "--resume", str(run), "--set", "generations=2",
                 "--no-progress"]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["software"] == older and config["resumed_with"] == [software_record()]
    # ...and said, because other code need not continue the run bit for bit
    err = capsys.readouterr().err
    assert "under other software than its last part" in err and "other driftlab code" in err
