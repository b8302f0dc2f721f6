"""Every bad input a user can give any verb ends in one line on stderr, exit
status 2, no traceback, and no change to the files that were there (and no
run directory left behind).

The table below holds (argv, expected part of the message). `{ws}` in argv is a
scratch workspace, rebuilt for each case, holding the inputs the cases need
(bad config files, drift files with wrong-shaped parameters, damaged train and
discovery run directories, files and unwritable folders to use as --out); each
case runs `driftlab` in-process with the workspace as working directory.

Errors must come before any compiling or training: the entry points of real
work (the trainer's init, the ES generation, PPO references, the symbolic and
family fits, chained stages) raise `ReachedWork` here, so a bad input that
gets through fails fast instead of training.

Argparse's own rejections (a flag of the wrong type, a missing argument) print
its usage line before the one-line error; those cases are marked `usage`.

The machine's own refusals are here too: a --out name too long, and a full disk
(ENOSPC, EDQUOT) or unwritable path (EROFS, EACCES) at a verb's first write,
simulated by an `os.replace` that refuses paths in the workspace. Those cases
may leave the run directory with nothing but its lock file (`leaves`), which a
new command may use as --out again.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from flax import serialization

ROOT = Path(__file__).resolve().parent.parent


class ReachedWork(Exception):
    """A bad input got past validation into real work."""


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    message: str
    needs: str = ""  # "immutable": an immutable empty directory; "sys": an unwritable /sys;
    # an errno name ("ENOSPC"): the workspace's os.replace raises it (`_refuse_replace`)
    cwd: str = ""  # working directory inside the workspace ("" = the workspace)
    usage: bool = False  # argparse rejection: usage line(s) before the error line
    xfail: str = ""  # reason: the fix lies in a file this change may not edit
    # Paths (relative to the workspace) the case may leave: a run directory whose first
    # write failed holds only its lock, and the same --out may be given again.
    leaves: tuple[str, ...] = ()


def case(id_: str, argv: list[str] | str, message: str, **kw) -> Case:
    return Case(id_, tuple(argv.split() if isinstance(argv, str) else argv), message, **kw)


OUT = "{ws}/out"
CARTPOLE = ["--env", "gymnax/CartPole-v1"]
# A run that would be tiny if a bad input got through.
TRAIN = ["train", "--algo", "ppo", *CARTPOLE, "--set", "total_timesteps=512",
         "--set", "num_envs=4", "--set", "num_steps=32", "--no-progress", "--out", OUT]
TRAIN_CONFIG = ["train", "--algo", "ppo", *CARTPOLE, "--no-progress", "--out", OUT, "--config"]
DISCOVER_CONFIG = ["discover", "--preset", "cartpole-tiny", "--no-progress", "--out", OUT,
                   "--config"]
DISCOVER = ["discover", "--preset", "cartpole-tiny", "--out", OUT, "--no-progress",
            "--set", "population=4", "--set", "generations=1", "--set", "eval_seeds=1",
            "--set", "inner.total_timesteps=512"]


def _with_sets(base: list[str], sets: tuple[str, ...]) -> list[str]:
    """`base` with `--set` pairs appended; a base pair of the same key is dropped (a
    key given twice is refused, see the `set-twice` cases)."""
    keys = {item.partition("=")[0].strip() for item in sets}
    argv: list[str] = []
    i = 0
    while i < len(base):
        if base[i] == "--set" and base[i + 1].partition("=")[0] in keys:
            i += 2
            continue
        argv.append(base[i])
        i += 1
    for item in sets:
        argv += ["--set", item]
    return argv


def train(*sets: str, algo: str = "ppo", extra: tuple[str, ...] = ()) -> list[str]:
    argv = _with_sets(TRAIN, sets)
    argv[2] = algo
    return argv + list(extra)


def discover(*sets: str, extra: tuple[str, ...] = ()) -> list[str]:
    return _with_sets(DISCOVER, sets) + list(extra)


INT, FLOAT, BOOL, STR = ("a whole number (int)", "a number (float)", "true or false (bool)",
                         "a string (str)")

CASES: list[Case] = []

# ---- typed settings: train --set ------------------------------------------------
for key, value, message in [
    ("num_envs", "abc", f"num_envs must be {INT}, got 'abc'"),
    ("num_envs", "1.5", f"num_envs must be {INT}, got 1.5"),
    ("num_envs", "true", f"num_envs must be {INT}, got True"),
    ("num_envs", "[4]", f"num_envs must be {INT}, got [4]"),
    ("num_envs", "0", "num_envs must be >= 1, got 0"),
    ("num_envs", "", f"num_envs must be {INT}, got None"),
    ("num_steps", "abc", f"num_steps must be {INT}, got 'abc'"),
    ("update_epochs", "abc", f"update_epochs must be {INT}, got 'abc'"),
    ("num_minibatches", "abc", f"num_minibatches must be {INT}, got 'abc'"),
    ("num_minibatches", "3", "not divisible by num_minibatches=3; change num_minibatches"),
    ("total_timesteps", "abc", f"total_timesteps must be {INT}, got 'abc'"),
    ("total_timesteps", "nan", f"total_timesteps must be {INT}, got 'nan'"),
    ("total_timesteps", "10", "total_timesteps=10 is less than one batch"),
    ("total_timesteps", "1e18", "more than the 2^31 - 1 the trainer counts"),
    ("learning_rate", "fast", f"learning_rate must be {FLOAT}, got 'fast'"),
    ("learning_rate", "[1, 2]", f"learning_rate must be {FLOAT}, got [1, 2]"),
    ("learning_rate", "0", "learning_rate must be a positive number"),
    ("learning_rat", "1e-3", "did you mean 'learning_rate'"),
    ("ent_coef", "abc", f"ent_coef must be {FLOAT}, got 'abc'"),
    ("ent_coef", ".nan", "ent_coef must be a finite number, got nan"),
    ("gamma", "abc", f"gamma must be {FLOAT}, got 'abc'"),
    ("gamma", "1.5", "gamma must be a value in (0, 1]"),
    ("gae_lambda", "{a: 1}", f"gae_lambda must be {FLOAT}, got {{'a': 1}}"),
    ("vf_coef", "abc", f"vf_coef must be {FLOAT}, got 'abc'"),
    ("vf_clip", "abc", f"vf_clip must be {FLOAT}, got 'abc'"),
    ("max_grad_norm", "abc", f"max_grad_norm must be {FLOAT}, got 'abc'"),
    ("max_grad_norm", "0", "max_grad_norm must be positive"),
    ("reward_scale", "true", f"reward_scale must be {FLOAT}, got True"),
    ("actor_hidden", "[a,b]", "actor_hidden must be a list of whole numbers such as [64, 64] "
                              "(list[int]), got ['a', 'b']"),
    ("actor_hidden", "abc", "actor_hidden must be a list of whole numbers"),
    ("actor_hidden", "[0]", "actor_hidden must list layer widths >= 1"),
    ("critic_hidden", "{a: 1}", "critic_hidden must be a list of whole numbers"),
    ("critic_hidden", "[64, 1.5]", "critic_hidden must be a list of whole numbers"),
    ("activation", "5", "activation must be one of tanh, relu, swish, elu, got 5"),
    ("activation", "sigmoid", "activation must be one of tanh, relu, swish, elu, got 'sigmoid'"),
    ("continuous", "gauss", "continuous must be one of clip, tanh, brax_tanh, got 'gauss'"),
    ("anneal_lr", "maybe", f"anneal_lr must be {BOOL}, got 'maybe'"),
    ("normalize_obs", "1", f"normalize_obs must be {BOOL}, got 1"),
    ("clip_value_loss", "abc", f"clip_value_loss must be {BOOL}, got 'abc'"),
    ("adam_eps", "abc", f"adam_eps must be {FLOAT}, got 'abc'"),
    ("adam_eps", "-1", "adam_eps must be a small non-negative number"),
    ("adam_b1", "abc", f"adam_b1 must be {FLOAT}, got 'abc'"),
    ("adam_b2", "1.0", "adam_b2 must be in [0, 1)"),
    ("hyperparams", "5", "hyperparams must be a mapping of hyperparameters"),
    ("hyperparams", "[1]", "hyperparams must be a mapping of hyperparameters"),
    ("hyperparams.foo", "1", "unknown hyperparameter 'foo'"),
    ("hyperparams.gamma", "abc", f"gamma must be {FLOAT}, got 'abc'"),
    ("hyperparams.gamma", "0.9", "gamma is set twice, as gamma (0.99) and as hyperparams.gamma"),
    ("env_options", "5", "env_options must be a mapping such as {key: value} (dict), got 5"),
    ("env_options", "[1, 2]", "env_options must be a mapping"),
    ("env_options.foo", "1", "unknown env option(s) 'foo' for gymnax/CartPole-v1; "
                             "it accepts episode_length"),
    ("env_options.backend", "spring", "unknown env option(s) 'backend' for gymnax/CartPole-v1"),
    ("env_options.episode_length", "abc", "env_options.episode_length of gymnax/CartPole-v1 "
                                          f"must be {INT}, got 'abc'"),
    ("env_options.episode_length", "0", "env_options.episode_length of gymnax/CartPole-v1 "
                                        "must be a whole number >= 1"),
    ("foo", "1", "unknown training setting 'foo'"),
    ("drift", "5", "drift must be a mapping of the drift's constants"),
    ("drift", "[0.2]", "drift must be a mapping of the drift's constants"),
    ("drift.foo", "1", "unknown option(s) 'foo' for drift 'ppo'; it accepts eps"),
    ("drift.eps", "abc", f"drift.eps must be {FLOAT}, got 'abc'"),
    ("drift.eps", "[0.1]", f"drift.eps must be {FLOAT}, got [0.1]"),
]:
    CASES.append(case(f"train-set-{key}={value}", train(f"{key}={value}"), message))

CASES += [
    case("train-set-dpo-alpha", train("drift.alpha=abc", algo="dpo"),
         f"drift.alpha must be {FLOAT}, got 'abc'"),
    case("train-set-dpo-beta-inf", train("drift.beta=.inf", algo="dpo"),
         "drift.beta must be a finite number (float), got inf"),
    case("train-set-lpo-hidden", train("drift.hidden=abc", algo="lpo"),
         f"drift.hidden must be {INT}, got 'abc'"),
    case("train-set-lpo-temporal", train("drift.temporal=maybe", algo="lpo"),
         f"drift.temporal must be {BOOL}, got 'maybe'"),
    case("train-set-none-option", train("drift.eps=0.2", algo="none"),
         "unknown option(s) 'eps' for drift 'none'; it accepts no options"),
    case("train-set-drift-with-file",
         train("drift.hidden=8", algo="lpo", extra=("--drift", "{ws}/drifts/lpo_ok")),
         "brings its own parameters; drop the drift.* settings"),
    case("train-set-catch-rows", train("env_options.rows=abc") + ["--env", "gymnax/Catch-bsuite"],
         f"env_options.rows of gymnax/Catch-bsuite must be {INT}, got 'abc'"),
    case("train-set-no-equals", train("num_envs"), "--set expects key=value, got 'num_envs'"),
    case("train-set-empty-key", train("=3"), "--set expects key=value, got '=3'"),
    case("train-set-empty-part", train("drift..eps=1"), "has an empty part"),
    case("train-set-below-scalar", train("env_options=5", "env_options.foo=1"),
         "env_options is already set to 5, not a mapping"),
    # --timesteps, --seeds, --chunks
    case("train-timesteps-nan", TRAIN + ["--timesteps", "nan"],
         "--timesteps must be a positive, finite number of environment steps such as 5e5, "
         "got nan"),
    case("train-timesteps-inf", TRAIN + ["--timesteps", "inf"], "--timesteps must be a "
                                                                "positive, finite number"),
    case("train-timesteps-negative", TRAIN + ["--timesteps", "-5"], "got -5.0"),
    case("train-timesteps-zero", TRAIN + ["--timesteps", "0"], "got 0.0"),
    case("train-timesteps-huge", TRAIN + ["--timesteps", "1e18"],
         "more than the 2^31 - 1 the trainer counts"),
    case("train-seeds-zero", TRAIN + ["--seeds", "0"], "--seeds must be >= 1, got 0"),
    case("train-lpo-without-drift", train(algo="lpo"), "--algo lpo needs --drift"),
    case("train-out-empty", TRAIN[:-1] + [""], "--out is empty"),
    case("train-seed-aliasing", TRAIN + ["--seed", "4294967296"],
         "--seed must be a whole number from 0 to 2147483647"),
    case("train-seed-huge", TRAIN + ["--seed", str(2**70)], "--seed must be a whole number"),
    case("train-seed-negative", TRAIN + ["--seed", "-1"], "--seed must be a whole number"),
    case("train-chunks-zero", TRAIN + ["--chunks", "0"], "--chunks must be >= 1, got 0"),
    # names
    case("train-env-typo", train() + ["--env", "gymnax/CartPol-v1"],
         "did you mean gymnax/CartPole-v1"),
    case("train-algo-typo", train(algo="ppx"), "unknown drift/algorithm 'ppx'"),
    case("train-distilled-no-drift", train(algo="distilled"), "--algo distilled needs --drift"),
    case("train-algo-mismatch", train(algo="dpo", extra=("--drift", "{ws}/drifts/lpo_ok")),
         "--algo dpo does not match the drift"),
    # config files: the same typed step as --set
    case("train-config-num-envs", [*TRAIN_CONFIG, "{ws}/cfg/num_envs_abc.yaml"],
         f"num_envs must be {INT}, got 'abc'"),
    case("train-config-hyperparams", [*TRAIN_CONFIG, "{ws}/cfg/hyperparams_5.yaml"],
         "hyperparams must be a mapping"),
    case("train-config-env-options", [*TRAIN_CONFIG, "{ws}/cfg/env_options_list.yaml"],
         "env_options must be a mapping"),
    case("train-config-drift", [*TRAIN_CONFIG, "{ws}/cfg/drift_5.yaml"],
         "drift must be a mapping"),
    case("train-config-hidden", [*TRAIN_CONFIG, "{ws}/cfg/actor_hidden_ab.yaml"],
         "actor_hidden must be a list of whole numbers"),
    case("train-config-list", [*TRAIN_CONFIG, "{ws}/cfg/list.yaml"],
         "holds a list, not a mapping of settings"),
    case("train-config-invalid", [*TRAIN_CONFIG, "{ws}/cfg/invalid.yaml"],
         "is not valid YAML"),
    case("train-config-binary", [*TRAIN_CONFIG, "{ws}/cfg/binary.yaml"],
         "is not a text file"),
    case("train-config-missing", [*TRAIN_CONFIG, "{ws}/cfg/missing.yaml"],
         "does not exist; check the path"),
    case("train-config-directory", [*TRAIN_CONFIG, "{ws}/cfg"], "is a directory"),
    case("train-config-duplicate-key", [*TRAIN_CONFIG, "{ws}/cfg/duplicate.yaml"],
         "key 'num_envs' appears twice (lines 1 and 3); keep one of them"),
    case("train-config-too-deep", [*TRAIN_CONFIG, "{ws}/cfg/deep.yaml"],
         "nests settings more than 32 levels deep"),
    case("train-config-too-large", [*TRAIN_CONFIG, "{ws}/cfg/large.yaml"],
         "is 2.0 MiB; a settings or record file is a few KiB"),
    # A device has no size to check first (issue 19's second audit: a MemoryError).
    case("train-config-dev-zero", [*TRAIN_CONFIG, "/dev/zero"],
         "/dev/zero holds more than 1 MiB; a settings or record file is a few KiB"),
    # 403 bytes of nested aliases that stand for 10^9 values (the audit: a hang).
    case("train-config-alias-bomb", [*TRAIN_CONFIG, "{ws}/cfg/alias_bomb.yaml"],
         "expands to more than 100,000 values (YAML aliases"),
    case("train-config-alias-cycle", [*TRAIN_CONFIG, "{ws}/cfg/alias_cycle.yaml"],
         "expands to more than 100,000 values (YAML aliases"),
    case("train-set-twice", [*TRAIN, "--set", "num_envs=8"],
         "--set num_envs is given twice ('4' and '8'); give it once"),
    case("discover-set-twice", [*DISCOVER, "--set", "inner.total_timesteps=1024"],
         "--set inner.total_timesteps is given twice ('512' and '1024'); give it once"),
    case("discover-config-duplicate-key", [*DISCOVER_CONFIG, "{ws}/cfg/duplicate.yaml"],
         "appears twice"),
]

# ---- drift files: wrong shapes, wrong keys, wrong types, in every verb that loads one --
DRIFT_FILES = [
    ("lpo_wrong_shape", "lpo", "parameter ['w_in'] has shape (8, 64), but a lpo drift"),
    ("lpo_wrong_keys", "lpo", "missing ['w_in'], ['w_out']; unexpected ['w']"),
    ("lpo_extra_key", "lpo", "unexpected ['bias']"),
    ("lpo_scalar/drift.json", "lpo", "has shape (), but a lpo drift"),
    ("dpo_shape.json", "dpo", "parameter ['alpha'] has shape (2,), but a dpo drift needs ()"),
    ("dpo_strings.json", "dpo", "its 'params' must hold numbers"),
    ("dpo_missing.json", "dpo", "missing ['beta']"),
    ("dpo_badopt.json", "dpo", f"drift.alpha must be {FLOAT}, got 'abc'"),
    ("ppo_unknownopt.json", "ppo", "unknown option(s) 'foo' for drift 'ppo'"),
    ("kind_list.json", "ppo", "'kind' must be a drift family name"),
    ("distilled_shape.json", "distilled", "parameter ['alpha'] has shape (2,)"),
    ("garbage.json", "lpo", "is unreadable: not valid JSON"),
    ("lpo_no_params", "lpo", "is missing"),
    ("lpo_corrupt_params", "lpo", "is corrupt"),
]
for name, algo, message in DRIFT_FILES:
    path = "{ws}/drifts/" + name
    label = name.split("/")[0].removesuffix(".json")
    CASES += [
        case(f"drift-file-train-{label}", train(algo=algo, extra=("--drift", path)), message),
        case(f"drift-file-inspect-{label}", ["inspect", path, "--compare", "none", "--out", OUT],
             message),
        case(f"drift-file-distill-{label}", ["distill", path, "--out", OUT, "--no-symbolic"],
             message),
        case(f"drift-file-evaluate-{label}", ["evaluate", path, "--envs", "gymnax/CartPole-v1",
                                              "--out", OUT], message),
    ]
CASES += [
    case("drift-file-inspect-compare", ["inspect", "ppo", "--compare",
                                        "{ws}/drifts/lpo_wrong_shape", "--out", OUT],
         "has shape (8, 64)"),
    case("drift-file-train-missing", train(algo="lpo", extra=("--drift", "/nonexistent/drift")),
         "does not exist"),
    case("drift-file-inspect-missing", ["inspect", "{ws}/nothing-here", "--out", OUT],
         "is neither a run directory"),
    case("drift-file-inspect-not-json", ["inspect", "{ws}/file.txt", "--out", OUT],
         "is not a drift file"),
    case("drift-file-inspect-empty-dir", ["inspect", "{ws}/cfg", "--out", OUT],
         "is a directory without drift.json or config.yaml"),
    case("drift-file-inspect-train-run-bad-option",
         ["inspect", "{ws}/compare/bad_drift_option", "--out", OUT],
         f"drift.alpha must be {FLOAT}, got 'abc'"),
    case("drift-file-inspect-train-run-config-list",
         ["inspect", "{ws}/compare/config_list", "--out", OUT], "not a mapping"),
]

# ---- output paths, in every verb ----------------------------------------------------
OUT_VERBS = {
    "train": TRAIN[:-2],
    "discover": DISCOVER[:3] + DISCOVER[5:],
    "inspect": ["inspect", "ppo", "--compare", "none"],
    "distill": ["distill", "dpo", "--no-symbolic"],
    "compare": ["compare", "{ws}/compare/good"],
    "quickstart": ["quickstart", "--tiny"],
    "experiment": ["experiment", "lpo-minatar", "--smoke", "--no-progress"],
    "evaluate": ["evaluate", "dpo", "--envs", "gymnax/CartPole-v1", "--no-progress"],
}
OUT_PATHS = [
    ("file", "{ws}/file.txt", "is an existing file, not a directory", ""),
    ("under-file", "{ws}/file.txt/run", "cannot be created: {ws}/file.txt is a file", ""),
    ("not-empty", "{ws}/full", "is not empty; choose a new --out", ""),
    ("immutable", "{ws}/immutable", "output directory {ws}/immutable cannot be written: ",
     "immutable"),
    ("read-only-fs", "/sys/driftlab-run", "cannot be written (in /sys)", "sys"),
    ("dangling-link", "{ws}/dangling", "is a dangling symbolic link", ""),
    ("name-too-long", "{ws}/" + "n" * 300 + "/run", "one of its names is 300 bytes long, more "
     "than the 255 a file name may have; choose a shorter --out", ""),
]
for verb, argv in OUT_VERBS.items():
    for label, path, message, needs in OUT_PATHS:
        CASES.append(case(f"out-{verb}-{label}", [*argv, "--out", path], message, needs=needs))
CASES += [
    case("out-train-default-runs-is-file", TRAIN[:-2], "output directory runs is an existing file",
         cwd="runs_file"),
    case("out-compare-default-runs-is-file", ["compare", "{ws}/compare/good"],
         "output directory runs is an existing file", cwd="runs_file"),
]

# ---- compare: damaged or foreign run directories --------------------------------------
for name, message in [
    ("list_line", "line 2 is list JSON, not an object"),
    ("int_line", "line 2 is int JSON, not an object"),
    ("str_line", "line 1 is str JSON, not an object"),
    ("null_line", "line 3 is NoneType JSON, not an object"),
    ("corrupt_middle", "line 2 is not valid JSON"),
    ("strings_per_seed", "episode_return_per_seed must be a list of numbers"),
    ("ragged", "line 2 has 1 seeds, the lines before it 2"),
    ("timesteps_str", "timesteps must be a number, got 'abc'"),
    ("summary_list", "holds list JSON, not an object"),
    ("summary_invalid", "is unreadable"),
    ("config_list", "holds a list, not a mapping of settings"),
    ("empty_metrics", "has no complete updates"),
    ("no_metrics", "is not a train run directory (no metrics.jsonl)"),
    ("discover_run", "is a `driftlab discover` run directory, not a train run"),
]:
    CASES.append(case(f"compare-{name}", ["compare", "{ws}/compare/good", "{ws}/compare/" + name,
                                          "--out", OUT], message))
CASES += [
    case("compare-not-a-dir", ["compare", "{ws}/file.txt", "--out", OUT],
         "is not a train run directory"),
    case("compare-bootstrap", ["compare", "{ws}/compare/good", "--bootstrap", "5", "--out", OUT],
         "--bootstrap must be >= 10"),
    # The second audit (issue 19): tracebacks before.
    case("compare-bootstrap-huge", ["compare", "{ws}/compare/good", "--bootstrap",
                                    "1000000000000", "--out", OUT],
         "--bootstrap 1000000000000 over these runs needs about"),
    case("compare-seed-negative", ["compare", "{ws}/compare/good", "--seed", "-1", "--out", OUT],
         "--seed must be a whole number from 0 to 2147483647"),
    case("compare-random-returns-dev-zero", ["compare", "{ws}/compare/good", "--random-returns",
                                             "/dev/zero", "--out", OUT],
         "/dev/zero holds more than 1 MiB"),
]

CASES += [
    case("compare-random-returns-missing", ["compare", "{ws}/compare/good", "--random-returns",
                                            "{ws}/nothing.json", "--out", OUT],
         "nothing.json does not exist"),
    case("compare-random-returns-not-mapping", ["compare", "{ws}/compare/good",
                                                "--random-returns", "{ws}/file.txt", "--out", OUT],
         "holds a str, not a mapping"),
    case("compare-random-returns-not-numbers", ["compare", "{ws}/compare/good",
                                                "--random-returns", "{ws}/cfg/num_envs_abc.yaml",
                                                "--out", OUT],
         "random-policy returns must be finite numbers per env id"),
]

# ---- evaluate: suites, envs, algorithms, numbers ----------------------------------------
EVALUATE = ["evaluate", "dpo", "--envs", "gymnax/CartPole-v1", "--no-progress", "--out", OUT]
CASES += [
    case("evaluate-suite-typo", ["evaluate", "dpo", "--suite", "clasic", "--out", OUT],
         "unknown suite 'clasic' (did you mean classic?)"),
    case("evaluate-suite-unknown", ["evaluate", "dpo", "--suite", "brax", "--out", OUT],
         "unknown suite 'brax'; choose one of classic, minatar"),
    case("evaluate-suite-and-envs", [*EVALUATE, "--suite", "classic"],
         "give --suite NAME or --envs ID ... (one of them)"),
    case("evaluate-no-envs", ["evaluate", "dpo", "--out", OUT], "give --suite NAME or --envs ID"),
    case("evaluate-env-typo", ["evaluate", "dpo", "--envs", "gymnax/CartPol-v1", "--out", OUT],
         "did you mean gymnax/CartPole-v1"),
    case("evaluate-env-unknown", ["evaluate", "dpo", "--envs", "gymnax/CartPole-v1", "nothing",
                                  "--out", OUT], "unknown environment 'nothing'"),
    case("evaluate-seeds-zero", [*EVALUATE, "--seeds", "0"], "--seeds must be >= 1, got 0"),
    case("evaluate-seeds-negative", [*EVALUATE, "--seeds", "-3"], "--seeds must be >= 1, got -3"),
    case("evaluate-seed-aliasing", [*EVALUATE, "--seed", "4294967296"],
         "--seed must be a whole number from 0 to 2147483647"),
    case("evaluate-seeds-text", [*EVALUATE, "--seeds", "many"], "invalid int value: 'many'",
         usage=True),
    case("evaluate-bootstrap", [*EVALUATE, "--bootstrap", "5"], "--bootstrap must be >= 10"),
    case("evaluate-timesteps-nan", [*EVALUATE, "--timesteps", "nan"],
         "--timesteps must be a positive, finite number"),
    case("evaluate-timesteps-zero", [*EVALUATE, "--timesteps", "0"],
         "--timesteps must be a positive, finite number"),
    case("evaluate-timesteps-tiny", [*EVALUATE, "--timesteps", "10"],
         "total_timesteps=10 is less than one batch"),
    case("evaluate-baseline-typo", [*EVALUATE, "--baselines", "ppo,dop"],
         "unknown baseline 'dop' (did you mean dpo?)"),
    case("evaluate-baseline-unknown", [*EVALUATE, "--baselines", "ppo,sac"],
         "unknown baseline 'sac'; give ppo, dpo, lpo-cartpole"),
    case("evaluate-baseline-bad-file", [*EVALUATE, "--baselines", "{ws}/drifts/lpo_wrong_shape"],
         "has shape (8, 64)"),
    case("evaluate-drift-typo", ["evaluate", "lpo-cartpol", "--envs", "gymnax/CartPole-v1",
                                 "--out", OUT], "unknown drift 'lpo-cartpol' (did you mean "
                                                "lpo-cartpole?"),
    case("evaluate-drift-bare-lpo", ["evaluate", "lpo", "--envs", "gymnax/CartPole-v1",
                                     "--out", OUT], "unknown drift 'lpo'"),
    case("evaluate-resume-not-evaluation", [*EVALUATE[:-1], "{ws}/full", "--resume"],
         "--resume needs --out DIR of an earlier evaluate"),
    case("evaluate-resume-no-out", ["evaluate", "dpo", "--envs", "gymnax/CartPole-v1",
                                    "--resume"], "--resume needs --out DIR"),
    case("evaluate-random-returns-not-numbers", [*EVALUATE, "--random-returns",
                                                 "{ws}/cfg/num_envs_abc.yaml"],
         "random-policy returns must be finite numbers per env id"),
    case("evaluate-random-returns-missing", [*EVALUATE, "--random-returns", "{ws}/nothing.json"],
         "nothing.json does not exist"),
    case("evaluate-jobs-zero", [*EVALUATE, "--jobs", "0"], "--jobs must be a whole number >= 1"),
    case("evaluate-baselines-from-not-evaluation", [*EVALUATE, "--baselines-from", "{ws}/full"],
         "is not an evaluate report folder (it has no evaluation.yaml)"),
    case("evaluate-baselines-from-missing", [*EVALUATE, "--baselines-from", "{ws}/nothing"],
         "is not an evaluate report folder"),
]

# ---- discover: typed settings, names, drift start, loggers ---------------------------------
for key, value, message in [
    ("sigma", "abc", f"sigma must be {FLOAT}, got 'abc'"),
    ("sigma", "-1", "sigma must be a positive number"),
    ("sigma", ".nan", "sigma must be a positive number, got nan"),
    ("sigma_min", "-1", "sigma_min must be a number >= 0"),
    ("lr", "fast", f"lr must be {FLOAT}, got 'fast'"),
    ("lr_decay", "2", "lr_decay must be in (0, 1]"),
    ("lr_min", ".inf", "lr_min must be a number >= 0"),
    ("adam_b1", "1.5", "adam_b1 must be in [0, 1)"),
    ("population", "abc", f"population must be {INT}, got 'abc'"),
    ("population", "9", "population=10"),
    ("population", "1", "population must be >= 2"),
    ("generations", "1.5", f"generations must be {INT}, got 1.5"),
    ("generations", "0", "generations must be >= 1"),
    ("antithetic", "maybe", f"antithetic must be {BOOL}, got 'maybe'"),
    ("strategy", "5", f"strategy must be {STR}, got 5"),
    ("strategy", "CMAES", "did you mean CMA_ES"),
    ("fitness", "best", "fitness must be one of last_fraction, final_update, final_eval, got 'best'"),
    ("fitness_shaping", "rank", "centered_rank"),
    ("final_fraction", "abc", f"final_fraction must be {FLOAT}, got 'abc'"),
    ("final_fraction", "2", "final_fraction must be in (0, 1]"),
    ("rollouts_per_member", "0", "rollouts_per_member must be >= 1"),
    ("eval_envs", "abc", f"eval_envs must be {INT}, got 'abc'"),
    ("seed", "abc", f"seed must be {INT}, got 'abc'"),
    ("seed", "4294967296", "seed must be a whole number from 0 to 2147483647"),
    ("seed", "-2", "seed must be a whole number from 0 to 2147483647"),
    ("normalization", "rank", "normalization must be one of ppo_ratio, random_ppo"),
    ("randomize", "5", "randomize must be a mapping"),
    ("randomize.learning_rate", "{low: 1, high: 0.1}", "needs normalization=random_ppo"),
    ("validation_envs", "[gymnax/CartPole-v1]", "in both envs and validation_envs"),
    ("test_envs", "[gymnax/NoSuchEnv-v0]", "unknown test env"),
    ("validation_every", "0", "validation_every must be >= 1"),
    ("reference_floor", "2", "reference_floor must be in (0, 1]"),
    ("envs_per_generation", "abc", "envs_per_generation must be a whole number (int) or null"),
    ("normalize_fitness", "maybe", "normalize_fitness must be true or false (bool) or null"),
    ("envs", "5", "envs must be a name or a list of names (list[str]), got 5"),
    ("envs", "[]", "env list is empty"),
    ("envs", "[gymnax/CartPole-v1, 5]", "envs must be a name or a list of names"),
    ("envs", "[gymnax/NoSuchEnv-v0]", "unknown environment 'gymnax/NoSuchEnv-v0'"),
    ("heldout_envs", "5", "heldout_envs must be a name or a list of names"),
    ("heldout_envs", "[gymnax/NoSuchEnv-v0]", "unknown environment 'gymnax/NoSuchEnv-v0'"),
    ("inner", "5", "inner must be a mapping of training settings"),
    ("inner.num_envs", "abc", f"gymnax/CartPole-v1 (inner:, inner_per_env: or train:): num_envs "
                              f"must be {INT}, got 'abc'"),
    ("inner.learning_rate", "fast", f"learning_rate must be {FLOAT}, got 'fast'"),
    ("inner.actor_hidden", "[a]", "actor_hidden must be a list of whole numbers"),
    ("inner.foo", "1", "unknown training setting 'foo'"),
    ("inner.env_options.foo", "1", "unknown env option(s) 'foo' for gymnax/CartPole-v1"),
    ("inner.num_minibatches", "3", "not divisible by num_minibatches=3"),
    ("inner_per_env", "5", "inner_per_env must be a mapping"),
    ("train", "5", "train must be a mapping"),
    ("drift", "5", "drift must be a mapping like {temporal: false, ppo_init: true}"),
    ("drift.foo", "1", "unknown drift option 'foo'"),
    ("drift.hidden", "abc", f"hidden must be {INT}, got 'abc'"),
    ("drift.temporal", "maybe", f"temporal must be {BOOL}, got 'maybe'"),
    ("reference_returns", "5", "reference_returns must be a mapping of names to numbers"),
    ("reference_returns.gymnax/CartPole-v1", "abc",
     f"reference_returns.gymnax/CartPole-v1 must be {FLOAT}, got 'abc'"),
    ("reference_returns.gymnax/CartPole-v1", "-1", "reference return of gymnax/CartPole-v1 "
                                                   "must be positive"),
    ("init_drift", "/nonexistent/drift", "does not exist"),
    ("init_drift", "{ws}/drifts/ppo.json", "is not an LPO drift"),
    ("init_drift", "{ws}/drifts/lpo_wrong_shape", "has shape (8, 64)"),
    ("init_drift", "5", f"init_drift must be {STR} or null, got 5"),
    ("init_mean", "ones", "init_mean must be one of random, zeros"),
    ("init_scale", "abc", f"init_scale must be {FLOAT}, got 'abc'"),
    ("population_padding", "maybe", "population_padding must be one of pad, refuse"),
    ("tensorboard", "maybe", f"tensorboard must be {BOOL}, got 'maybe'"),
    ("wandb_project", "[1]", f"wandb_project must be {STR}"),
    ("populaton", "8", "did you mean 'population'"),
    ("eval_every", "-1", "eval_every must be >= 0 (0: no evaluation), got -1"),
]:
    CASES.append(case(f"discover-set-{key}={value}", discover(f"{key}={value}"), message))
CASES += [
    case("discover-preset-typo", ["discover", "--preset", "cartpol-tiny", "--out", OUT],
         "did you mean cartpole-tiny"),
    case("discover-no-preset", ["discover", "--out", OUT], "give --preset NAME"),
    case("discover-config-sigma", [*DISCOVER_CONFIG, "{ws}/cfg/sigma_abc.yaml"],
         f"sigma must be {FLOAT}, got 'abc'"),
    case("discover-config-inner", [*DISCOVER_CONFIG, "{ws}/cfg/inner_5.yaml"],
         "inner must be a mapping"),
    case("discover-config-list", [*DISCOVER_CONFIG, "{ws}/cfg/list.yaml"],
         "holds a list, not a mapping of settings"),
    case("discover-config-missing", [*DISCOVER_CONFIG, "{ws}/cfg/missing.yaml"],
         "does not exist"),
    case("discover-set-no-equals", discover("population"), "--set expects key=value"),
    case("discover-set-below-scalar", discover("inner=5", "inner.num_envs=4"),
         "inner is already set to 5, not a mapping"),
]

# ---- discover: the drift family (`drift: {kind: ...}`) -----------------------------------
DISCOVER_DPO = ["discover", "--preset", "dpo-cartpole", "--out", OUT, "--no-progress",
                "--set", "population=4", "--set", "generations=1", "--set", "eval_seeds=1",
                "--set", "inner.total_timesteps=512"]
for id_, sets, message in [
    ("kind-unknown", ["drift.kind=foo"], "unknown drift kind 'foo'; the registered families are "
                                         "distilled, dpo, lpo, ppo"),
    ("kind-typo", ["drift.kind=dop"], "(did you mean dpo?)"),
    ("kind-none", ["drift.kind=none"], "drift kind none has no parameters to evolve"),
    ("kind-list", ["drift.kind=[dpo]"], "drift.kind must be a drift family name"),
    ("distilled-no-from", ["drift.kind=distilled"], "drift kind distilled needs `from:`"),
    ("distilled-from-missing", ["drift.kind=distilled", "drift.from=/nonexistent/drift.json"],
     "drift.from: /nonexistent/drift.json does not exist"),
    ("distilled-from-ppo", ["drift.kind=distilled", "drift.from={ws}/drifts/ppo.json"],
     "is a PPO drift, not a distilled formula"),
    ("distilled-from-no-constants", ["drift.kind=distilled",
                                     "drift.from={ws}/drifts/distilled_plain.json"],
     "has no constants to evolve"),
    ("distilled-option", ["drift.kind=distilled", "drift.from={ws}/drifts/ppo.json",
                          "drift.alpha=1"], "unknown drift option 'alpha' for kind distilled"),
    ("dpo-option", ["drift.eps=0.3"], "unknown option(s) 'eps' for drift 'dpo'; it accepts "
                                      "alpha, beta"),
    ("dpo-lpo-option", ["drift.temporal=true"], "drift option 'temporal' belongs to kind lpo, "
                                                "not dpo"),
    ("dpo-from", ["drift.from={ws}/drifts/ppo.json"], "'from' is only for kind distilled"),
    ("dpo-alpha-negative", ["drift.alpha=-1"], "DPO's alpha must be a positive number"),
    ("dpo-init-ppo", ["init_drift={ws}/drifts/ppo.json"],
     "is not a DPO drift (it is a PPO drift); give a DPO drift or set drift.kind=ppo"),
    ("dpo-init-lpo", ["init_drift={ws}/drifts/lpo_ok"], "(it is an LPO drift)"),
    ("ppo-init-dpo", ["drift.kind=ppo", "init_drift={ws}/drifts/dpo_ok.json"],
     "is not a PPO drift (it is a DPO drift)"),
]:
    argv = list(DISCOVER_DPO)
    for item in sets:
        argv += ["--set", item]
    CASES.append(case(f"discover-drift-{id_}", argv, message))
CASES += [
    case("discover-drift-kind-with-lpo-options", discover("drift.kind=dpo"),
         "drift option 'temporal' belongs to kind lpo, not dpo"),
    case("discover-drift-lpo-init-dpo", discover("init_drift={ws}/drifts/dpo_ok.json"),
         "is not an LPO drift with"),
]
if importlib.util.find_spec("wandb") is None:
    CASES.append(case("discover-wandb-missing", discover("wandb=true"),
                      "wandb=true needs wandb"))
    CASES.append(case("train-wandb-missing", TRAIN + ["--wandb"], "wandb=true needs wandb"))

# ---- discover --resume ----------------------------------------------------------------
RESUME = ["discover", "--no-progress", "--resume"]
CASES += [
    case("resume-missing", [*RESUME, "{ws}/nothing-here"], "is not a directory"),
    case("resume-no-config", [*RESUME, "{ws}/full"], "has no config.yaml"),
    case("resume-train-run", [*RESUME, "{ws}/compare/good"], "is not from `driftlab discover`"),
    case("resume-config-invalid", [*RESUME, "{ws}/resume/bad_yaml"], "is not valid YAML"),
    case("resume-config-bad-value", [*RESUME, "{ws}/resume/bad_value"],
         f"sigma must be {FLOAT}, got 'abc'"),
    case("resume-refused-setting", [*RESUME, "{ws}/resume/corrupt", "--set", "population=32"],
         "cannot change population when resuming"),
    case("resume-generations-abc", [*RESUME, "{ws}/resume/corrupt", "--set", "generations=abc"],
         f"generations must be {INT}, got 'abc'"),
    case("resume-generations-zero", [*RESUME, "{ws}/resume/corrupt", "--set", "generations=0"],
         "generations must be >= 1"),
    case("resume-tensorboard", [*RESUME, "{ws}/resume/corrupt", "--set", "tensorboard=maybe"],
         f"tensorboard must be {BOOL}"),
    case("resume-heldout-unknown", [*RESUME, "{ws}/resume/corrupt", "--set",
                                    "heldout_envs=[gymnax/NoSuchEnv-v0]"],
         "unknown environment 'gymnax/NoSuchEnv-v0'"),
    case("resume-with-out", [*RESUME, "{ws}/resume/corrupt", "--out", OUT],
         "drop --preset/--config/--out"),
    case("resume-corrupt-checkpoint", [*RESUME, "{ws}/resume/corrupt", "--set", "generations=5"],
         "every checkpoint in"),
]

# ---- inspect / distill arguments ------------------------------------------------------------
CASES += [
    case("inspect-points", ["inspect", "ppo", "--points", "1", "--out", OUT], "empty grid"),
    case("inspect-r-min", ["inspect", "ppo", "--r-min", "0", "--out", OUT],
         "need 0 < r-min < r-max"),
    case("inspect-r-nan", ["inspect", "ppo", "--r-max", "nan", "--out", OUT],
         "need 0 < r-min < r-max"),
    case("inspect-progress", ["inspect", "ta-lpo", "--progress", "2", "--out", OUT],
         "--progress 2.0 is outside [0, 1]"),
    case("inspect-compare-unknown", ["inspect", "ppo", "--compare", "ppx", "--out", OUT],
         "is neither a run directory"),
    case("distill-top", ["distill", "dpo", "--top", "0", "--out", OUT], "--top must be >= 1"),
    # The second audit (issue 19): tracebacks (numpy, gplearn) or an out-of-memory kill.
    case("distill-seed-negative", ["distill", "dpo", "--seed", "-1", "--out", OUT],
         "--seed must be a whole number from 0 to 2147483647"),
    case("distill-seed-huge", ["distill", "dpo", "--seed", "4294967296", "--out", OUT],
         "--seed must be a whole number from 0 to 2147483647"),
    case("distill-points-huge", ["distill", "dpo", "--points", "10000000", "--out", OUT],
         "distill --points 10000000 (10000000^2 grid points) needs about"),
    case("inspect-points-huge", ["inspect", "ppo", "--compare", "none", "--points", "1000000000",
                                 "--out", OUT],
         "inspect --points 1000000000 (1000000000^2 grid points) needs about"),
    case("distill-points", ["distill", "dpo", "--points", "1", "--out", OUT],
         "--points must be >= 2"),
    case("distill-population", ["distill", "dpo", "--population", "0", "--out", OUT],
         "--population must be >= 1"),
    case("distill-generations", ["distill", "dpo", "--generations", "0", "--out", OUT],
         "--generations must be >= 1"),
    case("distill-parsimony", ["distill", "dpo", "--parsimony", "-1", "--out", OUT],
         "--parsimony must be a finite number >= 0"),
    case("distill-grad-weight", ["distill", "dpo", "--grad-weight", "nan", "--out", OUT],
         "--grad-weight must be a finite number >= 0"),
    case("distill-r-range", ["distill", "dpo", "--r-min", "2", "--r-max", "1", "--out", OUT],
         "need 0 < --r-min < --r-max"),
    case("distill-a-range", ["distill", "dpo", "--a-min", "nan", "--out", OUT],
         "need --a-min < --a-max"),
    case("distill-nothing", ["distill", "dpo", "--no-symbolic", "--no-families", "--out", OUT],
         "leave nothing to fit"),
    case("distill-zero-drift", ["distill", "lpo", "--no-symbolic", "--out", OUT],
         "is zero everywhere on the grid"),
    case("distill-unknown", ["distill", "ppx", "--out", OUT], "is neither a run directory"),
    case("distill-train-run-config-list", ["distill", "{ws}/compare/config_list", "--out", OUT],
         "not a mapping"),
]

# ---- drifts --ship, quickstart, experiment ---------------------------------------------------
SHIP = ["drifts", "--dest", "{ws}/shipped", "--ship"]
CASES += [
    case("ship-missing", [*SHIP, "{ws}/nothing-here", "--name", "x"], "does not exist"),
    case("ship-heldout-typo", [*SHIP, "{ws}/ship/good", "--name", "x", "--heldout",
                               "gymnax/Acrobot-v2"], "unknown env 'gymnax/Acrobot-v2'"),
    case("ship-no-name", [*SHIP, "{ws}/ship/good"], "--ship needs --name"),
    case("ship-bad-name", [*SHIP, "{ws}/ship/good", "--name", "Bad Name"], "--ship needs --name"),
    case("ship-train-run", [*SHIP, "{ws}/compare/good", "--name", "x"],
         "is not a discovery or distill run directory"),
    case("ship-wrong-shape", [*SHIP, "{ws}/ship/wrong_shape", "--name", "x"],
         "has shape (8, 64)"),
    case("ship-list-metrics", [*SHIP, "{ws}/ship/list_metrics", "--name", "x"],
         "line 1 is list JSON, not an object"),
    case("ship-no-metrics", [*SHIP, "{ws}/ship/no_metrics", "--name", "x"],
         "has no metrics.jsonl records"),
    case("ship-dest-file", ["drifts", "--dest", "{ws}/file.txt", "--ship", "{ws}/ship/good",
                            "--name", "x"], "file.txt"),
    case("quickstart-resume-missing", ["quickstart", "--resume", "{ws}/nothing-here"],
         "is not a quickstart directory"),
    case("quickstart-resume-corrupt", ["quickstart", "--resume", "{ws}/quickstart_bad"],
         "quickstart.json"),
    case("quickstart-resume-other-seeds", ["quickstart", "--resume", "{ws}/quickstart_ok",
                                           "--seeds", "8"],
         "--seeds 8 differs from this quickstart's 4"),
    case("quickstart-resume-tiny", ["quickstart", "--resume", "{ws}/quickstart_ok", "--tiny"],
         "--tiny True differs from this quickstart's False"),
    case("experiment-unknown", ["experiment", "lpo-minatr", "--out", OUT],
         "did you mean lpo-minatar"),
]

# ---- a full disk or an unwritable path at a verb's first write (os.replace refuses) ---------
# `needs`: the errno the workspace's os.replace raises; the message names the file.
LEFT = ("out", "out/driftlab.lock")
FULL = ("); free space or give --out on another disk; files written before are intact (writes "
        "are atomic): continue with --resume where the verb has it")
CASES += [
    case("enospc-discover", DISCOVER, "no space left on the device holding {ws}/out/config.yaml "
         "(No space left on device" + FULL, needs="ENOSPC", leaves=LEFT),
    case("edquot-discover", DISCOVER, "disk quota exceeded on the device holding "
         "{ws}/out/config.yaml", needs="EDQUOT", leaves=LEFT),
    case("enospc-quickstart", ["quickstart", "--tiny", "--out", OUT], "no space left on the "
         "device holding {ws}/out/quickstart.json", needs="ENOSPC", leaves=LEFT),
    case("enospc-evaluate", EVALUATE, "no space left on the device holding "
         "{ws}/out/evaluation.yaml", needs="ENOSPC", leaves=LEFT),
    case("erofs-discover", DISCOVER, "{ws}/out/config.yaml cannot be written (Read-only file "
         "system); choose a writable --out or fix its permissions", needs="EROFS", leaves=LEFT),
    case("eacces-evaluate", EVALUATE, "{ws}/out/evaluation.yaml cannot be written (Permission "
         "denied); choose a writable --out", needs="EACCES", leaves=LEFT),
]

# ---- argparse's own rejections (usage line + one error line) ----------------------------------
CASES += [
    case("argparse-seeds", TRAIN + ["--seeds", "abc"], "invalid int value: 'abc'", usage=True),
    case("argparse-timesteps", TRAIN + ["--timesteps", "abc"], "invalid float value: 'abc'",
         usage=True),
    case("argparse-no-algo", ["train", *CARTPOLE], "--algo is required (or --rerun RUN_DIR)"),
    case("argparse-unknown-flag", ["discover", "--populaton", "8"],
         "unrecognized arguments: --populaton", usage=True),
    case("argparse-inspect-no-drift", ["inspect"], "the following arguments are required",
         usage=True),
    case("argparse-compare-no-runs", ["compare"], "the following arguments are required",
         usage=True),
    case("argparse-unknown-verb", ["trian"], "invalid choice: 'trian'", usage=True),
]


# ---- the workspace ----------------------------------------------------------------------------

def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def _jsonl(records: list) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _lpo_drift(folder: Path, params: dict | None, hidden: int = 128) -> None:
    spec = {"kind": "lpo", "temporal": False, "ppo_init": False, "hidden": hidden,
            "features": "lpo8", "params_file": "drift.params.msgpack"}
    _write(folder / "drift.json", json.dumps(spec))
    if params is not None:
        _write(folder / "drift.params.msgpack", serialization.msgpack_serialize(params))


def _train_run(folder: Path, lines: list | str, summary: object = None, config: object = None):
    _write(folder / "metrics.jsonl", lines if isinstance(lines, str) else _jsonl(lines))
    if summary is not None:
        _write(folder / "summary.json", summary if isinstance(summary, str)
               else json.dumps(summary))
    if config is not None:
        _write(folder / "config.yaml", yaml.safe_dump(config))


def _alias_bomb(levels: int) -> str:
    """A YAML list of `levels` nested anchors, each repeating the one inside it ten
    times: 10^levels values in a few hundred bytes."""
    text = "&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"
    for level in range(1, levels):
        text = f"&a{level} [{text}" + f", *a{level - 1}" * 9 + "]"
    return text + "\n"


def build_workspace(ws: Path) -> None:
    """The inputs the cases refer to (see the module docstring)."""
    _write(ws / "file.txt", "a file, not a directory\n")
    _write(ws / "full" / "keep.txt", "keep me\n")
    _write(ws / "runs_file" / "runs", "a file named runs\n")
    os.symlink(ws / "nowhere" / "target", ws / "dangling")
    _write(ws / "quickstart_bad" / "quickstart.json", "{not json")
    _write(ws / "quickstart_ok" / "quickstart.json", json.dumps(
        {"env": "gymnax/Acrobot-v1", "seeds": 4, "timesteps": 2e5, "generations": None,
         "tiny": False}))
    cfg = ws / "cfg"
    for name, text in {"num_envs_abc.yaml": "num_envs: abc\n", "hyperparams_5.yaml": "hyperparams: 5\n",
                       "env_options_list.yaml": "env_options: [1, 2]\n", "drift_5.yaml": "drift: 5\n",
                       "actor_hidden_ab.yaml": "actor_hidden: [a, b]\n", "list.yaml": "- 1\n- 2\n",
                       "invalid.yaml": "num_envs: [1,\n  gamma: {\n", "sigma_abc.yaml": "sigma: abc\n",
                       "inner_5.yaml": "inner: 5\n",
                       "duplicate.yaml": "num_envs: 4\nnum_steps: 32\nnum_envs: 8\n",
                       "deep.yaml": "hyperparams: " + "[" * 40 + "]" * 40 + "\n",
                       "large.yaml": "# padding\n" * (2 * 2**20 // 10),
                       "alias_bomb.yaml": "gamma: " + _alias_bomb(9),
                       "alias_cycle.yaml": "gamma: &x [1, *x]\n"}.items():
        _write(cfg / name, text)
    _write(cfg / "binary.yaml", b"\xff\xfe\x00\x81binary")

    drifts = ws / "drifts"
    zeros = {"w_in": np.zeros((8, 128), np.float32), "w_out": np.zeros((128,), np.float32)}
    _lpo_drift(drifts / "lpo_ok", zeros)
    _lpo_drift(drifts / "lpo_wrong_shape", {"w_in": np.zeros((8, 64), np.float32),
                                            "w_out": np.zeros((64,), np.float32)})
    _lpo_drift(drifts / "lpo_wrong_keys", {"w": np.zeros((8, 128), np.float32)})
    _lpo_drift(drifts / "lpo_extra_key", {**zeros, "bias": np.zeros((128,), np.float32)})
    _lpo_drift(drifts / "lpo_scalar", {"w_in": np.float32(0), "w_out": np.float32(0)})
    _lpo_drift(drifts / "lpo_no_params", None)
    _lpo_drift(drifts / "lpo_corrupt_params", None)
    _write(drifts / "lpo_corrupt_params" / "drift.params.msgpack", b"\xc1\xc1\xc1 not msgpack")
    for name, spec in {
        "dpo_shape.json": {"kind": "dpo", "params": {"alpha": [1.0, 2.0], "beta": 0.6}},
        "dpo_strings.json": {"kind": "dpo", "params": {"alpha": "abc", "beta": 0.6}},
        "dpo_missing.json": {"kind": "dpo", "params": {"alpha": 2.0}},
        "dpo_badopt.json": {"kind": "dpo", "alpha": "abc"},
        "ppo_unknownopt.json": {"kind": "ppo", "foo": 1},
        "kind_list.json": {"kind": [1]},
        "ppo.json": {"kind": "ppo"},
        "dpo_ok.json": {"kind": "dpo", "alpha": 1.5},
        "distilled_plain.json": {"kind": "distilled", "expression": "(r - 1)**2"},
        "distilled_shape.json": {"kind": "distilled", "expression": "alpha*(r - 1)**2",
                                 "constants": {"alpha": 1.0}, "params": {"alpha": [1.0, 2.0]}},
    }.items():
        _write(drifts / name, json.dumps(spec))
    _write(drifts / "garbage.json", "{not json")

    compare = ws / "compare"
    good = [{"update": i, "timesteps": 128 * i, "episode_return": 10.0 + i,
             "episode_return_per_seed": [9.0 + i, 11.0 + i]} for i in range(1, 4)]
    config = {"command": "train", "env": "gymnax/CartPole-v1", "algo": "ppo",
              "drift": {"kind": "ppo"}}
    summary = {"env": "gymnax/CartPole-v1", "algo": "ppo"}
    _train_run(compare / "good", good, summary, config)
    _train_run(compare / "list_line", _jsonl(good[:1]) + "[1, 2]\n", summary, config)
    _train_run(compare / "int_line", _jsonl(good[:1]) + "5\n", summary, config)
    _train_run(compare / "str_line", '"abc"\n' + _jsonl(good), summary, config)
    _train_run(compare / "null_line", _jsonl(good[:2]) + "null\n", summary, config)
    _train_run(compare / "corrupt_middle", _jsonl(good[:1]) + '{"update": 2, "tim\n'
               + _jsonl(good[2:]), summary, config)
    _train_run(compare / "strings_per_seed", [{**good[0], "episode_return_per_seed": "abc"}],
               summary, config)
    _train_run(compare / "ragged", [good[0], {**good[1], "episode_return_per_seed": [1.0]}],
               summary, config)
    _train_run(compare / "timesteps_str", [{**good[0], "timesteps": "abc"}], summary, config)
    _train_run(compare / "summary_list", good, "[1]", config)
    _train_run(compare / "summary_invalid", good, "{not json", config)
    _train_run(compare / "config_list", good, None, ["not", "a", "mapping"])
    _train_run(compare / "empty_metrics", "", summary, config)
    _write(compare / "no_metrics" / "summary.json", json.dumps(summary))
    _train_run(compare / "bad_drift_option", good, None,
               {**config, "algo": "dpo", "drift": {"kind": "dpo", "alpha": "abc"}})
    from driftlab.discover_command import build_config

    discovery = build_config("cartpole-tiny", None, {}).to_dict()
    saved = {"command": "discover", "preset": "cartpole-tiny", "discovery": discovery}
    _train_run(compare / "discover_run", [{"generation": 1, "fitness_mean": 1.0}], None, saved)

    resume = ws / "resume"
    _write(resume / "corrupt" / "config.yaml", yaml.safe_dump(saved, sort_keys=False))
    _write(resume / "corrupt" / "checkpoints" / "gen_000001.ckpt", b"not a checkpoint")
    _write(resume / "corrupt" / "metrics.jsonl", _jsonl([{"generation": 1}]))
    _write(resume / "bad_yaml" / "config.yaml", "discovery: [1,\n")
    bad_value = {**saved, "discovery": {**discovery, "sigma": "abc"}}
    _write(resume / "bad_value" / "config.yaml", yaml.safe_dump(bad_value, sort_keys=False))

    ship = ws / "ship"
    for name, params, metrics in [("good", zeros, [{"generation": 1, "seconds": 1.0}]),
                                  ("wrong_shape", {"w_in": np.zeros((8, 64), np.float32),
                                                   "w_out": np.zeros((64,), np.float32)},
                                   [{"generation": 1}]),
                                  ("list_metrics", zeros, "[1, 2]\n"),
                                  ("no_metrics", zeros, None)]:
        _lpo_drift(ship / name, params)
        _write(ship / name / "config.yaml", yaml.safe_dump(saved, sort_keys=False))
        if metrics is not None:
            _write(ship / name / "metrics.jsonl",
                   metrics if isinstance(metrics, str) else _jsonl(metrics))


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under `root`: file bytes, "dir" or the link target."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = path.read_bytes()
    return out


def _make_immutable(path: Path) -> bool:
    path.mkdir()
    if shutil.which("chattr") and os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if done.returncode == 0:
            return True
    path.chmod(0o555)
    try:
        (path / "probe").write_text("")
    except OSError:
        return True
    (path / "probe").unlink()
    return False


def _release_immutable(path: Path) -> None:
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
    path.chmod(0o755)


def _guard_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the entry points of real work raise ReachedWork."""
    import driftlab.analysis.distill
    import driftlab.discovery.fitness
    import driftlab.discovery.loop
    import driftlab.quickstart_command
    from driftlab.algorithms.trainer import Trainer

    def stop(what: str):
        def raise_(*args, **kwargs):
            raise ReachedWork(f"the bad input reached {what}")
        return raise_

    monkeypatch.setattr(Trainer, "init", stop("training (Trainer.init)"))
    monkeypatch.setattr(driftlab.discovery.loop.Discovery, "generation_step", stop("an ES generation"))
    monkeypatch.setattr(driftlab.discovery.fitness, "reference_return", stop("a PPO reference run"))
    monkeypatch.setattr(driftlab.analysis.distill, "fit_families", stop("the family fits"))
    monkeypatch.setattr(driftlab.analysis.distill, "symbolic_regression", stop("the symbolic search"))
    monkeypatch.setattr(driftlab.quickstart_command, "run_stages", stop("the quickstart's stages"))


def run_case(item: Case, ws: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> dict:
    """Run one case in-process; what happened, for the assertions (and for counting)."""
    from driftlab.cli import main

    build_workspace(ws)
    immutable = ws / "immutable"
    if item.needs == "immutable" and not _make_immutable(immutable):
        _release_immutable(immutable)
        pytest.skip("cannot make an unwritable directory here")
    if item.needs == "sys" and not _sys_is_read_only():
        pytest.skip("/sys is writable here")
    if item.needs.startswith("E"):  # e.g. ENOSPC: writes into the workspace fail with it
        _refuse_replace(monkeypatch, ws, getattr(errno, item.needs))
    argv = [arg.replace("{ws}", str(ws)) for arg in item.argv]
    monkeypatch.chdir(ws / item.cwd)
    _guard_work(monkeypatch)
    before = snapshot(ws)
    result: dict = {"exception": None}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result["code"] = main(argv)
            except SystemExit as exit_:
                result["code"] = exit_.code
            except Exception as err:  # a traceback on the command line
                result["code"] = None
                result["exception"] = err
    finally:
        if item.needs == "immutable":
            _release_immutable(immutable)
    out, err = capsys.readouterr()
    ours = [w for w in caught if str(w.filename).startswith(str(ROOT))
            and "/.venv/" not in str(w.filename)]
    result["err"] = err
    result["lines"] = err.strip().splitlines() + [f"warning: {w.message}" for w in ours]
    after = snapshot(ws)
    if item.needs == "immutable":
        before.pop("immutable", None)
        after.pop("immutable", None)
    result["changed"] = sorted(k for k in before.keys() | after.keys()
                               if before.get(k) != after.get(k) and k not in item.leaves)
    if item.leaves and (ws / "out").exists():  # what is left may be used as --out again
        from driftlab.rundir import check_output_dir

        check_output_dir(ws / "out")
    result["message"] = item.message.replace("{ws}", str(ws))
    return result


def _refuse_replace(monkeypatch: pytest.MonkeyPatch, ws: Path, code: int) -> None:
    """os.replace (the last step of every atomic write) raises OSError(`code`) for a
    target in the workspace, as a full disk or read-only file system would."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).startswith(str(ws)):
            raise OSError(code, os.strerror(code), str(src), None, str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def _sys_is_read_only() -> bool:
    try:
        Path("/sys/driftlab-probe").mkdir()
    except OSError:
        return True
    Path("/sys/driftlab-probe").rmdir()
    return False


def _params() -> list:
    out = []
    for item in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=item.xfail)] if item.xfail else []
        out.append(pytest.param(item, id=item.id, marks=marks))
    return out


def test_cases_are_many_and_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert len(CASES) >= 100


@pytest.mark.parametrize("item", _params())
def test_bad_input_is_one_line(item: Case, tmp_path: Path, monkeypatch, capsys):
    result = run_case(item, tmp_path / "ws", monkeypatch, capsys)
    if result["exception"] is not None:
        raise result["exception"]
    lines = result["lines"]
    assert "Traceback" not in result["err"], result["err"]
    assert result["code"] == 2, (result["code"], lines)
    if item.usage:
        assert lines and lines[0].startswith("usage:"), lines
        lines = [line for line in lines if not line.startswith(" ") and
                 not line.startswith("usage:")]
    assert len(lines) == 1, lines
    assert result["message"] in lines[0], (result["message"], lines[0])
    assert result["changed"] == [], f"files changed: {result['changed']}"


# ---- discover run-directory traps (not bad inputs, but the same promise: no dead ends) --------

TINY_DISCOVERY = ["--set", "inner.total_timesteps=1024", "--set", "inner.num_envs=4",
                  "--set", "inner.num_steps=32", "--set", "inner.update_epochs=2",
                  "--set", "inner.num_minibatches=2", "--set", "inner.actor_hidden=[16]",
                  "--set", "inner.critic_hidden=[16]", "--set", "population=8",
                  "--set", "eval_seeds=2", "--set", "eval_every=2", "--set", "init_drift=null",
                  "--set", "generations=2", "--no-progress"]


def test_discover_run_directory_traps(tmp_path: Path):
    """(1) A run killed before its first checkpoint (config.yaml, perhaps a metrics
    line, no checkpoint) resumes from scratch in place, bitwise the uninterrupted
    run. (2) Resuming keeps config.yaml byte for byte when nothing changes, and
    keeps `preset:` when it does change. (3) A crash between the last checkpoint
    and the export (drift.json a generation behind) is repaired by --resume, even
    when the run is finished."""
    from driftlab.cli import main

    whole, trap, stale = tmp_path / "whole", tmp_path / "trap", tmp_path / "stale"
    assert main(["discover", "--preset", "cartpole-tiny", *TINY_DISCOVERY, "--out",
                 str(whole)]) == 0
    exports = ["drift.json", "drift.params.msgpack", "drift_best.json",
               "drift_best.params.msgpack", "checkpoints/gen_000002.ckpt"]

    # (1) killed before the first checkpoint
    trap.mkdir()
    shutil.copy(whole / "config.yaml", trap / "config.yaml")
    first = (whole / "metrics.jsonl").read_text().splitlines()[0]
    (trap / "metrics.jsonl").write_text(first + "\n" + first[:20])  # a record and a torn line
    config_bytes = (trap / "config.yaml").read_bytes()
    assert main(["discover", "--resume", str(trap), "--no-progress"]) == 0
    for name in exports:
        assert (trap / name).read_bytes() == (whole / name).read_bytes(), name
    logged = [json.loads(line)["generation"]
              for line in (trap / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2]
    # (2) nothing changed: config.yaml untouched, `preset:` kept
    assert (trap / "config.yaml").read_bytes() == config_bytes
    assert main(["discover", "--resume", str(trap), "--set", "eval_every=1",
                 "--no-progress"]) == 0
    saved = yaml.safe_load((trap / "config.yaml").read_text())
    assert saved["preset"] == "cartpole-tiny" and saved["discovery"]["eval_every"] == 1

    # (3) drift.json / drift_best.json a generation behind their checkpoint
    shutil.copytree(whole, stale)
    for name in ("drift", "drift_best"):
        spec = json.loads((stale / f"{name}.json").read_text())
        (stale / f"{name}.json").write_text(json.dumps({**spec, "generation": 1}))
        (stale / f"{name}.params.msgpack").write_bytes(serialization.msgpack_serialize(
            {"w_in": np.ones((8, 128), np.float32), "w_out": np.ones((128,), np.float32)}))
    assert main(["discover", "--resume", str(stale), "--no-progress"]) == 0  # already finished
    for name in exports:
        assert (stale / name).read_bytes() == (whole / name).read_bytes(), name
