"""The machine's own refusals end in one line and exit status 2, never a
traceback: a full disk, a name too long, an unwritable path (driftlab.errors.
resource_error), a JAX platform that cannot start (platform_error), and a
program that needs more memory than is free (driftlab.memory, checked on the
program the run compiles anyway, before it runs).

What each leaves behind: a training run refused for memory leaves nothing (the
check comes before its run directory appears); a discovery refused before its
first generation leaves its run directory resumable (config.yaml and
config.started.yaml, no generation: `--resume` starts it over in place); a
training run whose disk fills up mid-run leaves a run directory without
summary.json, which `compare` names as incomplete. The bad-input table
(test_bad_inputs.py) holds the --out and first-write cases.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from driftlab import memory
from driftlab.errors import DriftlabError, resource_error

ROOT = Path(__file__).resolve().parent.parent
TINY_TRAIN = ["train", "--algo", "ppo", "--env", "gymnax/CartPole-v1", "--set",
              "total_timesteps=1024", "--set", "num_envs=4", "--set", "num_steps=32",
              "--no-progress"]
TINY_DISCOVERY = ["discover", "--preset", "cartpole-tiny", "--set", "inner.total_timesteps=1024",
                  "--set", "inner.num_envs=4", "--set", "inner.num_steps=32",
                  "--set", "inner.update_epochs=2", "--set", "inner.num_minibatches=2",
                  "--set", "inner.actor_hidden=[16]", "--set", "inner.critic_hidden=[16]",
                  "--set", "population=4", "--set", "eval_seeds=2", "--set", "init_drift=null",
                  "--set", "generations=1", "--no-progress"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ---- resource_error: which OSErrors are the machine's, and their line ------------------------

def test_resource_error_lines():
    full = resource_error(OSError(errno.ENOSPC, "No space left on device", "/d/.x.tmp", None,
                                  "/d/config.yaml"))
    assert full.startswith("no space left on the device holding /d/config.yaml (No space left")
    assert "free space or give --out on another disk" in full and "--resume" in full
    quota = resource_error(OSError(errno.EDQUOT, "Disk quota exceeded"), fallback="runs/x")
    assert quota.startswith("disk quota exceeded on the device holding runs/x")

    name = "/tmp/" + "a" * 300 + "/run"
    long_name = resource_error(OSError(errno.ENAMETOOLONG, "File name too long", name))
    assert "one of its names is 300 bytes long, more than the 255" in long_name
    assert long_name.endswith("choose a shorter --out")
    deep = "/" + "/".join(["b" * 200] * 25)  # every name fits, the whole path does not
    assert "more than the 4096 a path may have" in resource_error(
        OSError(errno.ENAMETOOLONG, "File name too long", deep))

    for code in (errno.EROFS, errno.EACCES, errno.EPERM):
        line = resource_error(OSError(code, os.strerror(code), "/ro/out"))
        assert line == (f"/ro/out cannot be written ({os.strerror(code)}); choose a writable "
                        "--out or fix its permissions")
    for code in (errno.EIO, errno.ENOENT, errno.EEXIST):
        assert resource_error(OSError(code, os.strerror(code), "/x")) is None


def test_other_oserror_is_raised_unchanged(monkeypatch):
    import driftlab.envs_command
    from driftlab.cli import main

    bug = OSError(errno.EIO, "Input/output error", "/x")

    def fail(args):
        raise bug

    monkeypatch.setattr(driftlab.envs_command, "run", fail)
    with pytest.raises(OSError) as caught:
        main(["envs"])
    assert caught.value is bug


def test_write_error_mid_training_is_one_line_and_the_run_is_incomplete(tmp_path, monkeypatch,
                                                                       capsys):
    """The disk fills when params.msgpack is written (after every update ran): one
    line; the run directory has no summary.json, so `compare` calls it incomplete."""
    from driftlab.cli import main

    run = tmp_path / "run"
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == "params.msgpack":
            raise OSError(errno.ENOSPC, "No space left on device", str(src), None, str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    assert main([*TINY_TRAIN, "--out", str(run)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"driftlab train: error: no space left on the device holding "
                           f"{run}/params.msgpack"), line
    assert (run / "metrics.jsonl").is_file() and not (run / "summary.json").exists()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no torn temp file
    monkeypatch.setattr(os, "replace", real)
    assert main(["compare", str(run), "--out", str(tmp_path / "cmp")]) == 2
    assert "incomplete" in _one_line(capsys)


# ---- an unavailable JAX platform ---------------------------------------------------------------

@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="an NVIDIA GPU is visible here")
def test_unavailable_jax_platform_is_one_line(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cuda"}
    done = subprocess.run([sys.executable, "-m", "driftlab.cli", *TINY_TRAIN, "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("driftlab: error: JAX_PLATFORMS=cuda asks for a platform this "
                               "machine cannot start"), lines[0]
    assert "unset JAX_PLATFORMS" in lines[0] and "jax[cuda12]" in lines[0]
    assert not (tmp_path / "run").exists()


# ---- memory refused up front ------------------------------------------------------------------

def test_meminfo_available_and_device_memory(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  32000000 kB\nMemFree:  1000 kB\nMemAvailable:  2048 kB\n")
    assert memory.meminfo_available(str(meminfo)) == 2048 * 1024
    assert memory.meminfo_available(str(tmp_path / "missing")) is None
    gpu = SimpleNamespace(platform="gpu", id=0,
                          memory_stats=lambda: {"bytes_limit": 100, "bytes_in_use": 30})
    assert memory.available_bytes(gpu) == 70
    assert memory.available_bytes(SimpleNamespace(platform="gpu", memory_stats=lambda: None)) \
        is None


def test_check_fits(monkeypatch):
    stats = SimpleNamespace(argument_size_in_bytes=1 << 30, output_size_in_bytes=1 << 30,
                            temp_size_in_bytes=2 << 30)  # 4 GiB per device
    compiled = SimpleNamespace(memory_analysis=lambda: stats)
    cpus = [SimpleNamespace(platform="cpu", id=i) for i in range(2)]
    monkeypatch.setattr(memory, "meminfo_available", lambda: 6 << 30)
    memory.check_fits(compiled, cpus[:1], "x", "fix")  # 4 GiB of 6: fits
    with pytest.raises(DriftlabError) as caught:  # two CPU devices share the RAM: 8 of 6
        memory.check_fits(compiled, cpus, "a run", "use less")
    assert str(caught.value).startswith("a run needs 8.00 GiB of memory but this machine has "
                                        "6.00 GiB RAM available; use less")
    monkeypatch.setenv("DRIFTLAB_MEMORY_CHECK", "off")
    memory.check_fits(compiled, cpus, "x", "fix")
    monkeypatch.delenv("DRIFTLAB_MEMORY_CHECK")
    memory.check_fits(None, cpus, "x", "fix")  # the compile failed: the real call reports it
    memory.check_fits(SimpleNamespace(memory_analysis=lambda: None), cpus, "x", "fix")
    monkeypatch.setattr(memory, "meminfo_available", lambda: None)  # unreadable: no check
    memory.check_fits(compiled, cpus, "x", "fix")
    gpus = [SimpleNamespace(platform="gpu", id=i, memory_stats=lambda i=i: {
        "bytes_limit": (8 - 5 * i) << 30, "bytes_in_use": 0}) for i in range(2)]
    with pytest.raises(DriftlabError, match="has 3.00 GiB free on gpu device 1"):
        memory.check_fits(compiled, gpus, "x", "fix")  # per device: 4 of 8, 4 of 3


def test_train_refused_for_memory_leaves_nothing(tmp_path, monkeypatch, capsys):
    """Refused before its run directory appears: nothing is left behind."""
    from driftlab.cli import main

    monkeypatch.setattr(memory, "meminfo_available", lambda: 1000)
    assert main([*TINY_TRAIN, "--seeds", "2", "--out", str(tmp_path / "run")]) == 2
    line = _one_line(capsys)
    assert line.startswith("driftlab train: error: training 2 seed(s) at once needs "), line
    assert "GiB of memory but this machine has 9.3e-07 GiB RAM available; train fewer " \
           "seeds at once (--seeds) or fewer environments per seed (--set num_envs=...)" in line
    assert list(tmp_path.iterdir()) == []


def test_sweep_refused_for_memory_leaves_nothing(tmp_path, monkeypatch, capsys):
    from driftlab.cli import main

    monkeypatch.setattr(memory, "meminfo_available", lambda: 1000)
    assert main([*TINY_TRAIN, "--sweep", "learning_rate=1e-3,3e-4", "--out",
                 str(tmp_path / "run")]) == 2
    line = _one_line(capsys)
    assert "training 2 settings x 1 seed(s) at once needs " in line, line
    assert "sweep fewer values" in line
    assert list(tmp_path.iterdir()) == []


def test_discover_refused_for_memory_is_left_resumable(tmp_path, monkeypatch, capsys):
    """Refused before its first generation: the run directory holds its settings and
    no generation, and `--resume` runs it once memory is free."""
    from driftlab.cli import main

    run = tmp_path / "run"
    monkeypatch.setattr(memory, "meminfo_available", lambda: 1000)
    assert main([*TINY_DISCOVERY, "--out", str(run)]) == 2
    line = _one_line(capsys)
    assert line.startswith("driftlab discover: error: a discovery generation (4 members, "), line
    assert "a smaller population (--set population=N)" in line
    assert f"the run directory {run} is left as it was (it holds no generation yet: " \
           "--resume it once memory is free" in line
    assert sorted(p.name for p in run.iterdir()) == ["config.started.yaml", "config.yaml",
                                                     "driftlab.lock"]
    monkeypatch.undo()
    assert main(["discover", "--resume", str(run), "--no-progress"]) == 0
    assert (run / "drift.json").is_file() and (run / "checkpoints").is_dir()
