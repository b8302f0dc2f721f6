"""`driftlab quickstart` checks every flag before its first stage: a bad one is exit
status 2 and one line on stderr naming the flag and the fix, with no traceback, no
--out directory and no file written.

The API functions the stages call raise `ReachedWork` here, so a bad input that got
past the checks fails at once instead of training; the valid invocations at the end
show the checks let the ordinary runs through to stage 1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from driftlab import api
from driftlab.cli import main


class ReachedWork(Exception):
    """A quickstart got past its checks into a stage."""


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every API function the quickstart's stages call raises ReachedWork; the
    working directory is an empty scratch folder (the default --out is runs/...)."""
    for name in ("discover", "inspect", "distill", "train", "compare"):
        def stop(*args, _name=name, **kwargs):
            raise ReachedWork(f"the quickstart reached api.{_name}")
        monkeypatch.setattr(api, name, stop)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def snapshot(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = "dir" if path.is_dir() else path.read_bytes()
    return out


def refused(argv: list[str], work: Path, capsys) -> str:
    """Run `driftlab quickstart *argv` in `work`; assert the one-line refusal that
    changed nothing and started no stage; return the line."""
    before = snapshot(work)
    code = main(["quickstart", *argv])  # ReachedWork or a traceback would raise here
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, lines
    assert "===" not in out, f"a stage started:\n{out}"
    assert snapshot(work) == before, "files were written"
    return lines[0]


def _record(folder: Path, **changes) -> Path:
    folder.mkdir()
    settings = {"env": "gymnax/Acrobot-v1", "seeds": 4, "timesteps": 2e5, "generations": None,
                "tiny": False, **changes}
    (folder / "quickstart.json").write_text(json.dumps(settings))
    return folder


# Bug 1: --seeds unchecked, and --tiny silently replaced --seeds (and --timesteps).
@pytest.mark.parametrize("argv, message", [
    (["--tiny", "--seeds", "0"], "--seeds must be a whole number >= 1 such as 4, got 0"),
    (["--seeds", "0"], "--seeds must be a whole number >= 1"),
    (["--seeds", "-3"], "--seeds must be a whole number >= 1"),
    (["--tiny", "--seeds", "3"], "--seeds 3 cannot be used with --tiny: --tiny sets --seeds "
                                 "to 2; drop --seeds, or drop --tiny"),
    (["--tiny", "--timesteps", "5e4"], "--timesteps 50000 cannot be used with --tiny: --tiny "
                                       "sets --timesteps to 20000"),
], ids=["tiny-seeds-0", "seeds-0", "seeds-negative", "tiny-overrides-seeds",
        "tiny-overrides-timesteps"])
def test_seeds_and_what_tiny_overrides(argv, message, guarded, capsys):
    assert message in refused([*argv, "--out", "qs"], guarded, capsys)


# Bug 2: a non-finite or non-positive --timesteps was ignored or failed in stage 4.
@pytest.mark.parametrize("argv, message", [
    (["--tiny", "--timesteps", "nan"], "--timesteps must be a positive, finite number of "
                                       "environment steps such as 2e5, got nan"),
    (["--timesteps", "inf"], "--timesteps must be a positive, finite number"),
    (["--timesteps", "-5"], "--timesteps must be a positive, finite number"),
    (["--timesteps", "0"], "--timesteps must be a positive, finite number"),
    (["--timesteps", "0.5"], "--timesteps must be a positive, finite number"),
    (["--timesteps", "10"], "(10 env steps per seed): total_timesteps=10 is less than one "
                            "batch"),
    (["--timesteps", "1e18"], "more than the 2^31 - 1 the trainer counts"),
], ids=["tiny-nan", "inf", "negative", "zero", "below-one", "below-one-batch", "huge"])
def test_timesteps(argv, message, guarded, capsys):
    assert message in refused([*argv, "--out", "qs"], guarded, capsys)


# Bug 3: --generations -1 failed only after qsneg/ and quickstart.json were written.
@pytest.mark.parametrize("value", ["-1", "0"])
def test_generations(value, guarded, capsys):
    line = refused(["--tiny", "--generations", value, "--out", "qsneg"], guarded, capsys)
    assert f"--generations must be a whole number >= 1 such as 10, got {value}" in line
    assert "--resume" not in line


# Bug 4: an unknown --env was found after discover, inspect and distill had run.
@pytest.mark.parametrize("env, message", [
    ("gymnax/Acrobat-v1", "--env gymnax/Acrobat-v1: unknown environment 'gymnax/Acrobat-v1' "
                          "(did you mean gymnax/Acrobot-v1"),
    ("Acrobot", "did you mean gymnax/Acrobot-v1"),
    ("", "--env must be an environment id"),
], ids=["typo", "bare-name", "empty"])
def test_env(env, message, guarded, capsys):
    line = refused(["--tiny", "--env", env, "--out", "qstypo"], guarded, capsys)
    assert message in line and "`driftlab envs` lists all ids" in line


# The other flags: --out, --resume, and a record --resume would run with.
def test_out_and_resume(guarded, capsys):
    assert "--out is empty" in refused(["--tiny", "--out", ""], guarded, capsys)
    assert "--resume is empty" in refused(["--resume", ""], guarded, capsys)
    done = _record(guarded / "done")
    assert "--out cannot be used with --resume" in refused(
        ["--resume", str(done), "--out", "elsewhere"], guarded, capsys)
    # Records a bad value (as the unchecked flags could write): refused before the lock.
    bad = _record(guarded / "qsneg", generations=-1, tiny=True)
    assert f"{bad / 'quickstart.json'} records generations -1, not a whole number >= 1; " \
        "start a new quickstart with --out" in refused(["--resume", str(bad)], guarded, capsys)
    null = _record(guarded / "qsn", timesteps=None)
    assert "records timesteps None" in refused(["--resume", str(null)], guarded, capsys)
    typo = _record(guarded / "qstypo", env="gymnax/Acrobat-v1")
    assert "did you mean gymnax/Acrobot-v1" in refused(["--resume", str(typo)], guarded, capsys)


# Valid invocations are unchanged: they get through the checks to stage 1.
@pytest.mark.parametrize("argv, recorded", [
    (["--tiny"], {"seeds": 2, "timesteps": 2e4, "generations": None, "tiny": True}),
    (["--tiny", "--generations", "3", "--env", "gymnax/CartPole-v1"],
     {"env": "gymnax/CartPole-v1", "seeds": 2, "generations": 3}),
    ([], {"env": "gymnax/Acrobot-v1", "seeds": 4, "timesteps": 2e5, "tiny": False}),
    (["--seeds", "3", "--timesteps", "1e5", "--generations", "5"],
     {"seeds": 3, "timesteps": 1e5, "generations": 5}),
], ids=["tiny", "tiny-generations-env", "default", "full-flags"])
def test_valid_runs_reach_the_first_stage(argv, recorded, guarded, capsys):
    with pytest.raises(ReachedWork, match="api.discover"):
        main(["quickstart", *argv, "--out", "qs"])
    saved = json.loads((guarded / "qs" / "quickstart.json").read_text())
    assert {k: saved[k] for k in recorded} == recorded
    assert "=== 1/5 discover" in capsys.readouterr().out


def test_resume_reaches_the_first_stage(guarded, capsys):
    done = _record(guarded / "done")
    with pytest.raises(ReachedWork, match="api.discover"):
        main(["quickstart", "--resume", str(done), "--seeds", "4"])
    old_tiny = _record(guarded / "old-tiny", tiny=True)  # written before tiny recorded 2/2e4
    with pytest.raises(ReachedWork, match="api.discover"):
        main(["quickstart", "--resume", str(old_tiny)])


def test_a_resumed_discovery_keeps_its_own_generations_unless_given():
    """A quickstart discovery started with another default (the preset's 8
    generations, before QUICK_DISCOVERY) is resumed to its own target, not 4."""
    from driftlab.quickstart_command import QUICK_DISCOVERY, _discovery_settings

    assert _discovery_settings(False, None) == QUICK_DISCOVERY
    assert QUICK_DISCOVERY["eval_every"] == 0  # stage 4 trains the drift anyway
    assert _discovery_settings(False, None, resume=True) == {}
    assert _discovery_settings(False, 6, resume=True) == {"generations": 6}
    assert _discovery_settings(True, None, resume=True) == {"generations": 2, "eval_seeds": 2}
