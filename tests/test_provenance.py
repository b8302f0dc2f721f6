"""A train run records what produced it (the drift's constants and a copy of its
parameters), and `compare` never pools unlike runs or counts a run twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from driftlab.analysis.compare import load_runs
from driftlab.analysis.surfaces import AnalysisError, load_source
from driftlab.cli import main

TINY = ["--env", "gymnax/CartPole-v1", "--set", "total_timesteps=512", "--set", "num_envs=4",
        "--set", "num_steps=32", "--no-progress"]


def train(tmp_path, name: str, *extra: str, algo: str = "dpo") -> str:
    out = tmp_path / name
    assert main(["train", "--algo", algo, *TINY, *extra, "--out", str(out)]) == 0
    return str(out)


def test_drift_constants_are_recorded_and_inspect_reads_the_copy(tmp_path):
    run = train(tmp_path, "alpha", "--set", "drift.alpha=0.5", "--set", "drift.beta=3")
    config = yaml.safe_load(open(f"{run}/config.yaml"))
    assert config["drift"]["kind"] == "dpo"
    assert config["drift"]["alpha"] == pytest.approx(0.5) and config["drift"]["beta"] == 3.0
    source = load_source(run)
    assert float(source.params["alpha"]) == pytest.approx(0.5)
    assert float(source.params["beta"]) == pytest.approx(3.0)
    ppo = train(tmp_path, "eps", "--set", "drift.eps=0.01", algo="ppo")
    assert yaml.safe_load(open(f"{ppo}/config.yaml"))["drift"]["eps"] == pytest.approx(0.01)


def test_learned_drift_is_copied_so_a_changed_source_cannot_change_the_record(tmp_path):
    run = train(tmp_path, "lpo", "--drift", "lpo-cartpole", algo="lpo")
    spec = json.loads(open(f"{run}/drift.json").read())
    assert spec["kind"] == "lpo" and spec["params_file"] == "drift.params.msgpack"
    from driftlab.algorithms.drift_io import load_drift

    _, shipped = load_drift("lpo-cartpole")
    copy = load_source(run).params
    assert (copy["w_in"] == shipped["w_in"]).all()


def test_compare_refuses_unlike_runs_and_counts_a_run_once(tmp_path):
    a = train(tmp_path, "a")
    b = train(tmp_path, "b", "--seed", "1")
    lr = train(tmp_path, "lr", "--seed", "2", "--set", "learning_rate=1e-3")
    alpha = train(tmp_path, "alpha", "--seed", "3", "--set", "drift.alpha=0.5")
    budget = train(tmp_path, "budget", "--seed", "4", "--timesteps", "1024")
    same_seed = train(tmp_path, "same", "--seed", "1")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    groups = load_runs([a, b, a, str(tmp_path / "link"), f"{a}/"])
    assert len(groups) == 1 and groups[0].returns.shape[0] == 2  # a and b, once each
    for other, key in ((lr, "learning_rate"), (alpha, "drift.alpha"),
                       (budget, "train.total_timesteps")):
        with pytest.raises(AnalysisError, match=key) as err:
            load_runs([a, other])
        assert "\n" not in str(err.value)
    with pytest.raises(AnalysisError, match="base seed 1"):
        load_runs([b, same_seed])
    # Other code or libraries may train otherwise: not pooled. Other numerics (ISA, XLA
    # flags) only draw the seeds afresh: pooled.
    config_path = Path(b) / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    software = config["software"]
    for key, value in (("numerics", {**software["numerics"], "xla_flags": "--xla_foo"}),
                       ("source", "0123456789abcdef"),
                       ("packages", {**software["packages"], "flax": "0.1"})):
        config_path.write_text(yaml.safe_dump({**config, "software": {**software, key: value}}))
        if key == "numerics":
            assert load_runs([a, b])[0].returns.shape[0] == 2
            continue
        with pytest.raises(AnalysisError, match=f"software.{key}") as err:
            load_runs([a, b])
        assert "\n" not in str(err.value)


def test_compare_with_an_unknown_reference_is_one_line(tmp_path, capsys):
    a = train(tmp_path, "a")
    assert main(["compare", a, "--reference", "ppx", "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ppx" in err[0], err


def test_resume_names_a_hand_edited_setting_and_rewrites_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["discover", "--preset", "cartpole-tiny", "--out", str(run), "--no-progress",
                 "--set", "population=4", "--set", "generations=1", "--set", "eval_seeds=1",
                 "--set", "inner.total_timesteps=512", "--set", "inner.num_envs=4",
                 "--set", "inner.num_steps=32"]) == 0
    assert (run / "config.started.yaml").is_file()
    capsys.readouterr()
    config = run / "config.yaml"
    original = config.read_text()
    for old, new, key in (("population: 4", "population: 8", "population"),
                          ("strategy: Open_ES", "strategy: SNES", "strategy"),
                          ("total_timesteps: 512", "total_timesteps: 1024",
                           "train.gymnax/CartPole-v1.total_timesteps")):
        assert old in original, old
        config.write_text(original.replace(old, new))
        assert main(["discover", "--resume", str(run), "--set", "generations=2",
                     "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"changed {key} from" in err[0], err
        assert config.read_text() == original.replace(old, new)  # nothing rewritten
    config.write_text(original)
    assert main(["discover", "--resume", str(run), "--set", "generations=2", "--no-progress"]) == 0


def test_one_writer_per_run_directory(tmp_path):
    """A second writer gets one line naming the holder; the lock goes with its holder,
    however it ends (kill -9 included), so it is never stale."""
    import signal
    import subprocess
    import sys
    import time

    from driftlab.errors import DriftlabError
    from driftlab.rundir import LOCK_NAME, hold_lock, release_locks

    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from driftlab.rundir import hold_lock; "
        f"hold_lock({str(run)!r}, 'driftlab discover'); print('held', flush=True); "
        "time.sleep(120)")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(DriftlabError, match=r"in use by driftlab discover \(pid \d+\)") as err:
        hold_lock(run)
    assert "\n" not in str(err.value)
    # the CLI says the same in one line, exit 2, for a resume of a locked discovery
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    time.sleep(0.1)
    hold_lock(run)  # the killed holder's lock went with it
    hold_lock(run)  # re-entrant within one process
    assert (run / LOCK_NAME).read_text().endswith(f"(pid {__import__('os').getpid()})\n")
    release_locks()


@pytest.mark.slow
def test_a_second_resume_of_a_running_discovery_is_refused(tmp_path, capsys):
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "driftlab.cli", "discover", "--preset",
                              "cartpole-tiny", "--out", str(run), "--no-progress",
                              "--set", "generations=200", "--set", "inner.total_timesteps=512",
                              "--set", "inner.num_envs=4", "--set", "inner.num_steps=32"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (run / "metrics.jsonl").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert first.poll() is None
        before = (run / "config.yaml").read_text()
        assert main(["discover", "--resume", str(run), "--set", "generations=300",
                     "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "in use by driftlab discover (pid" in err[0], err
        assert (run / "config.yaml").read_text() == before  # the second writer wrote nothing
    finally:
        first.kill()
        first.wait()


BRAX_TINY = ["--env", "brax/inverted_pendulum", "--set", "total_timesteps=1024",
             "--set", "num_envs=8", "--set", "num_steps=16", "--set", "num_minibatches=4",
             "--set", "unroll_length=4", "--set", "env_options.episode_length=64",
             "--no-progress"]


@pytest.mark.parametrize("case, argv", [
    ("ppo-eps", ["--algo", "ppo", *TINY, "--set", "drift.eps=0.01", "--set", "learning_rate=3e-3"]),
    ("dpo-constants", ["--algo", "dpo", *TINY, "--set", "drift.alpha=0.5", "--set",
                       "drift.beta=3", "--seeds", "2", "--seed", "7", "--chunks", "3"]),
    ("lpo-shipped", ["--algo", "lpo", "--drift", "lpo-cartpole", *TINY]),
    ("brax-preset", ["--algo", "ppo", *BRAX_TINY]),
])
def test_rerun_from_config_yaml_is_bit_for_bit(tmp_path, case, argv, capsys):
    """`train --rerun RUN` trains what RUN/config.yaml records: the same parameters and
    metrics to the bit (the Brax preset's PPO eps 0.3 and Brax mode included)."""
    first, again = tmp_path / "first", tmp_path / "again"
    assert main(["train", *argv, "--out", str(first)]) == 0
    capsys.readouterr()
    assert main(["train", "--rerun", str(first), "--out", str(again), "--no-progress"]) == 0
    assert "note:" not in capsys.readouterr().err  # same code, libraries and numerics
    assert (first / "params.msgpack").read_bytes() == (again / "params.msgpack").read_bytes()
    assert (first / "metrics.jsonl").read_text() == (again / "metrics.jsonl").read_text()
    a, b = (yaml.safe_load((d / "config.yaml").read_text()) for d in (first, again))
    assert a["drift"] == b["drift"] and a["train"] == b["train"], case
    if case == "brax-preset":
        assert a["drift"]["eps"] == pytest.approx(0.3) and a["train"]["advantages"] == "unroll"


@pytest.mark.parametrize("argv, message", [
    (["--algo", "ppo"], "drop --algo"),
    (["--seeds", "3"], "drop --seeds"),
    (["--set", "learning_rate=1e-3"], "drop --set"),
])
def test_rerun_refuses_other_settings_and_non_train_dirs(tmp_path, capsys, argv, message):
    run = train(tmp_path, "run")
    capsys.readouterr()
    assert main(["train", "--rerun", run, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert main(["train", "--rerun", str(tmp_path)]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_rerun_under_other_numerics_says_it_need_not_match(tmp_path, capsys):
    """A run recorded under other XLA flags (or ISA, code, libraries) is re-run with a
    note naming the difference: bit-for-bit holds only on the same numerics."""
    run = Path(train(tmp_path, "run"))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["software"]["numerics"]["xla_flags"] = "--xla_cpu_max_isa=AVX2"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert main(["train", "--rerun", str(run), "--out", str(tmp_path / "again"),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "ran with xla_flags '--xla_cpu_max_isa=AVX2'" in err and "bit for bit" in err


# ---- the second audit (issue 19) ---------------------------------------------------------

def test_every_run_records_the_software_that_produced_it(tmp_path):
    from driftlab.software import PACKAGES

    run = train(tmp_path, "run")
    software = yaml.safe_load(open(f"{run}/config.yaml"))["software"]
    assert software["driftlab"] and software["python"]
    assert set(software["packages"]) == set(PACKAGES) and software["packages"]["jax"]
    # Run from this checkout: its commit, and whether tracked files had changes.
    assert len(software["commit"]) == 40 and isinstance(software["uncommitted"], bool)
    assert main(["compare", run, "--reference", "dpo", "--random-returns", "off",
                 "--bootstrap", "10", "--out", str(tmp_path / "cmp")]) == 0
    assert yaml.safe_load(open(tmp_path / "cmp" / "config.yaml"))["software"] == software


def test_a_sweep_combination_is_not_rerun_as_if_bitwise(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    assert main(["train", "--algo", "dpo", *TINY, "--sweep", "drift.alpha=0.5,2",
                 "--out", str(sweep)]) == 0
    (combination,) = [p for p in (sweep / "combinations").iterdir() if p.name.startswith("01")]
    capsys.readouterr()
    assert main(["train", "--rerun", str(combination), "--out", str(tmp_path / "again")]) == 2
    err = capsys.readouterr().err.strip()
    assert "one of its combinations" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "again").exists()


def test_compare_scores_an_env_only_against_the_reference_on_it(tmp_path, capsys):
    ppo = train(tmp_path, "ppo", algo="ppo")
    out = tmp_path / "acrobot"
    assert main(["train", "--algo", "dpo", "--env", "gymnax/Acrobot-v1", *TINY[2:],
                 "--out", str(out)]) == 0
    assert main(["compare", ppo, str(out), "--random-returns", "off", "--bootstrap", "10",
                 "--out", str(tmp_path / "cmp")]) == 0
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    # DPO ran only where PPO did not: no normalised score (it used to get 1.000 from its
    # own mean), and the note says why.
    assert set(data["normalized"]) == {"ppo"}
    assert "not scored: gymnax/Acrobot-v1 (no ppo result there" in data["normalization"]["note"]


def test_compare_suggests_the_label_of_the_algorithm_given_as_reference(tmp_path, capsys):
    run = train(tmp_path, "lpo", "--drift", "lpo-cartpole", algo="lpo")
    capsys.readouterr()
    assert main(["compare", run, "--reference", "lpo", "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err.strip()
    assert "(did you mean 'lpo (lpo-cartpole)'?)" in err and len(err.splitlines()) == 1, err


def test_a_shipped_name_records_the_shipped_drift_not_a_same_named_folder(tmp_path, monkeypatch,
                                                                          capsys):
    from driftlab.algorithms.shipped import shipped_dir

    (tmp_path / "lpo-cartpole").mkdir()  # a folder of that name where the user works
    monkeypatch.chdir(tmp_path)
    run = train(tmp_path, "run", "--drift", "lpo-cartpole", algo="lpo")
    recorded = yaml.safe_load(open(f"{run}/config.yaml"))["drift_file"]
    assert recorded == str(shipped_dir("lpo-cartpole").resolve())
    assert "the folder ./lpo-cartpole here was not used" in capsys.readouterr().err


def test_software_difference_names_what_differs():
    """Runs pool only when the same code (source digest; or, for records written before
    digests, the same clean commit) and the same libraries trained them."""
    from driftlab.software import software_difference, software_record, source_digest

    mine = software_record()
    assert len(mine["source"]) == 16 and mine["source"] == source_digest()
    assert software_difference(mine) is None
    assert software_difference({**mine, "uncommitted": True}) is None  # the code is the same
    assert "other driftlab code" in software_difference({**mine, "source": "0" * 16})
    assert "jax 0.1" in software_difference({**mine, "packages": {**mine["packages"],
                                                                  "jax": "0.1"}})
    assert "Python 3.0" in software_difference({**mine, "python": "3.0"})
    # The machine's numerics: another ISA or XLA flags train to other returns.
    numerics = mine["numerics"]
    assert numerics["platform"] == "cpu" and isinstance(numerics["xla_flags"], str)
    for key, value in [("xla_flags", "--xla_cpu_max_isa=AVX2"), ("cpu_features", ["avx"]),
                       ("x64", not numerics["x64"])]:
        assert f"ran with {key}" in software_difference({**mine, "numerics": {**numerics,
                                                                             key: value}})
    assert "records no numerics" in software_difference({**mine, "numerics": None})
    assert "records no software" in software_difference(None)
    clean = {**mine, "commit": "a" * 40, "uncommitted": False}
    old = {k: v for k, v in clean.items() if k != "source"}  # before digests: by commit
    assert software_difference(old, {**clean, "source": None}) is None
    assert software_difference({**old, "uncommitted": True}, {**clean, "source": None})
    assert software_difference(old, {**clean, "source": None, "commit": "b" * 40})


def test_numerics_record_reads_xla_flags_but_not_the_device_count(monkeypatch):
    from driftlab.software import numerics_record

    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=AVX2 "
                                    "--xla_force_host_platform_device_count=2")
    assert numerics_record()["xla_flags"] == "--xla_cpu_max_isa=AVX2"
