"""driftlab's Python API: one function per verb. The `driftlab` command line parses
its arguments and calls these; the quickstart, the experiment recipes and a notebook
call them the same way, with Python values:

    from driftlab import api

    found = api.discover("cartpole-tiny", settings={"generations": 4})
    run = api.train("lpo", "gymnax/Acrobot-v1", drift=found.run_dir, seeds=4, timesteps=2e5)
    print(run.final_returns)  # mean return of the last 10% of updates, per seed

`settings` are mappings of the settings a preset or config file holds; a dotted key
(`{"drift.eps": 0.3}`) sets one setting of a nested mapping, like `--set`. Every
function checks its inputs before it writes anything, raises a DriftlabError (or
another of `driftlab.errors.user_errors()`) naming the problem, writes one run
directory (or report folder) and returns what it wrote. Run directories it locks
for writing are released when it returns. Budgets are in environment steps per
seed; returns are undiscounted episode returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftlab.comparison import CompareResult
from driftlab.discovery_run import DiscoverResult
from driftlab.drift_reports import DistillResult, InspectResult
from driftlab.train_checks import DEFAULT_CHUNKS

if TYPE_CHECKING:
    from driftlab.evaluation import EvaluationReport
    from driftlab.sweep_run import SweepOutcome
    from driftlab.training import TrainOutcome

__all__ = ["discover", "reselect", "train", "rerun", "evaluate", "inspect", "distill", "compare",
           "DiscoverResult", "InspectResult", "DistillResult", "CompareResult"]

Settings = Mapping[str, Any]


@contextmanager
def _call() -> Iterator[None]:
    """Around every API function: JAX's persistent compilation cache switched on once
    per process, as the command line does (a process that chose its own cache keeps
    it), and the run directories the call locked released when it returns."""
    from driftlab.cli import ensure_compilation_cache
    from driftlab.rundir import releasing_new_locks

    ensure_compilation_cache()
    with releasing_new_locks():
        yield


def discover(preset: str | None = None, *, config: str | Path | None = None,
             settings: Settings | None = None, out: str | Path | None = None,
             resume: str | Path | None = None, distributed: bool = False,
             cpu_devices: str | int | None = None, progress: bool = True) -> DiscoverResult:
    """Meta-learn a drift with evolution strategies.

    `preset` names configs/discover/NAME.yaml (e.g. "cartpole-tiny"); `config` is a
    YAML file and `settings` a mapping merged over it (e.g. {"population": 32,
    "inner.num_envs": 16}). `out`: the run directory to create (default
    runs/discover-...). `resume`: a discovery run directory to continue from its
    latest checkpoint (bitwise the uninterrupted run); `settings` may then change only
    generations, eval/checkpoint cadence, loggers and held-out envs.
    `cpu_devices`: "auto" (one XLA device per core), "off" or a count; `distributed`
    calls jax.distributed.initialize() first. Returns the run directory, the
    settings and the ES loop's outcome (generations, best fitness, history)."""
    from driftlab.discovery_run import discover_run
    from driftlab.presets import expand_dotted

    with _call():
        return discover_run(preset, config, expand_dotted(settings), out=out, resume=resume,
                            distributed=distributed, cpu_devices=cpu_devices,
                            progress=progress)


def reselect(run_dir: str | Path, selection: str) -> dict[str, Any]:
    """Choose the discovery run `run_dir`'s drift_selected.json again under the rule
    `selection` ("max_score" or "beats_start"), from the validations it holds
    (nothing is trained); config.yaml records the change (`reselections`) and a
    later resume keeps the new rule. Returns the record ({from, to, generation,
    previous_generation, software})."""
    from driftlab.reselection import reselect as reselect_run

    with _call():
        return reselect_run(run_dir, selection)


def train(algo: str, env: str, *, seeds: int = 1, seed: int = 0,
          timesteps: float | None = None, config: str | Path | None = None,
          settings: Settings | None = None, drift: str | Path | None = None,
          out: str | Path | None = None, chunks: int = DEFAULT_CHUNKS, progress: bool = True,
          tensorboard: bool = False, wandb: bool = False, wandb_project: str = "driftlab",
          sweep: Mapping[str, Sequence[Any]] | None = None) -> TrainOutcome | SweepOutcome:
    """Train `seeds` agents in one vmapped jit and write a run directory.

    `algo`: ppo, dpo, none, lpo or distilled (lpo/distilled take `drift`: a run
    directory, a drift .json or a shipped drift name). `env`: e.g.
    "gymnax/CartPole-v1". Settings: the env's preset, then `config` (YAML file), then
    `settings` (e.g. {"learning_rate": 3e-4, "drift.eps": 0.3}), then `timesteps`
    (env steps per seed). `chunks`: jitted pieces the run is split into for
    progress and logging. Returns the TrainOutcome: run_dir, final_returns
    (seeds,), returns (seeds, updates), timesteps, seconds, steps_per_second and
    the seeds that diverged. `sweep`: {setting: [values]} over numeric
    hyperparameters and drift constants, every combination x `seeds` trained in one
    compiled program (driftlab.sweep); then a SweepOutcome is returned."""
    from driftlab.presets import expand_dotted
    from driftlab.train_checks import check_settings, check_train_request
    from driftlab.training import resolve_settings, train_run

    check_train_request(timesteps, seeds, chunks, out)
    drift_path = None if drift is None else str(drift)
    # A preset's per-algorithm drift constants (drift_by_algo) apply to built-in drifts only.
    resolved = resolve_settings(env, config, expand_dotted(settings), timesteps,
                                algo=None if drift_path else algo)
    check_settings(algo, resolved, drift_path)
    grid = {} if sweep is None else {"sweep": dict(sweep)}  # passed only when asked for
    with _call():
        return train_run(env, algo, resolved, seeds=seeds, seed=seed, drift_path=drift_path,
                         out=out, chunks=chunks, progress=progress, tensorboard=tensorboard,
                         wandb=wandb, wandb_project=wandb_project, **grid)


def rerun(run_dir: str | Path, *, out: str | Path | None = None,
          progress: bool = True) -> TrainOutcome:
    """Train again exactly what the train run directory `run_dir` records (its
    config.yaml: algorithm, env, seeds, every setting, the drift's constants or its
    copied parameters, the chunking) into `out`: bit for bit the same run on the
    same machine and software. Returns the TrainOutcome."""
    from driftlab.rerun import rerun_request
    from driftlab.training import TrainOutcome

    outcome = train(**rerun_request(run_dir), out=out, progress=progress)
    assert isinstance(outcome, TrainOutcome)  # no sweep: rerun_request refuses those
    return outcome


def evaluate(drift: str | Path, *, suite: str | None = None, envs: Sequence[str] | None = None,
             seeds: int = 16, baselines: Sequence[str] = ("ppo", "dpo"),
             out: str | Path | None = None, resume: bool = False,
             timesteps: float | None = None,
             random_returns: str | Path | Mapping[str, float] | None = None,
             bootstrap: int = 2000, seed: int = 0, progress: bool = True, jobs: int = 1,
             baselines_from: str | Path | None = None,
             reuse_across_software: bool = False) -> EvaluationReport:
    """Train `drift` and `baselines` (PPO always) on every env of `suite` ("classic",
    "minatar") or of `envs`, each at its preset and budget (`timesteps` overrides
    every budget), `seeds` seeds each; write one report folder (per-env IQM with 95%
    CIs, PPO-normalised aggregate IQM, probability of improvement over PPO,
    performance profiles). `resume`: continue the evaluation in `out`.
    `random_returns`: env id -> random-policy return (a mapping or a JSON/YAML file)
    instead of measuring them. `jobs`: cells (algorithm x env) trained side by side in
    that many processes. `baselines_from`: an earlier evaluation's folder whose
    baseline cells trained alike are copied instead of retrained.
    `reuse_across_software`: pool copied or (on resume) kept cells trained by other
    code, libraries or numerics (CPU features, XLA_FLAGS) instead of refusing them; the report lists them. Returns the
    EvaluationReport (out, data, text)."""
    from driftlab.evaluation import evaluate as evaluate_suite

    if isinstance(random_returns, Mapping):
        random_returns = dict(random_returns)
    with _call():
        return evaluate_suite(str(drift), suite=suite,
                              envs=None if envs is None else list(envs), seeds=seeds,
                              baselines=tuple(baselines), out=out, timesteps=timesteps,
                              bootstrap=bootstrap, seed=seed, resume=resume,
                              random_returns=random_returns, progress=progress, jobs=jobs,
                              baselines_from=baselines_from,
                              reuse_across_software=reuse_across_software)


def inspect(drift: str | Path, *, compare: Sequence[str] = ("ppo", "dpo"),
            out: str | Path | None = None, r_range: tuple[float, float] = (0.25, 2.0),
            a_range: tuple[float, float] = (-5.0, 5.0), points: int = 201, log_r: bool = False,
            progress_values: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> InspectResult:
    """Plot a drift's surfaces and check the three drift conditions.

    `drift`: a run directory, a drift .json, a built-in name (ppo, dpo, lpo) or a
    shipped drift; `compare`: drifts shown beside it (empty for none). The grid is
    `points` x `points` over the probability ratio r in `r_range` (log-spaced with
    `log_r`) and the advantage A in `a_range`; temporal drifts are also drawn at
    `progress_values` (fractions of training done, in [0, 1]). Returns the run
    directory, the condition report and the plots."""
    from driftlab.drift_reports import inspect_drift

    with _call():
        return inspect_drift(drift, compare=list(compare), out=out, r_range=r_range,
                             a_range=a_range, points=points, log_r=log_r,
                             progress_values=tuple(progress_values))


def distill(drift: str | Path, *, out: str | Path | None = None, top: int = 3,
            symbolic: bool = True, families: bool = True, population: int = 1000,
            generations: int = 20, parsimony: float = 0.002, seed: int = 0, points: int = 61,
            r_range: tuple[float, float] = (0.4, 1.8), a_range: tuple[float, float] = (-4.0, 4.0),
            grad_weight: float = 0.3) -> DistillResult:
    """Turn a drift into closed-form formulas: fit the PPO-clip, DPO, polynomial and
    rational `families` and a `symbolic` regression (gplearn `population`,
    `generations`, complexity penalty `parsimony` per node) on a `points` x `points`
    (r, A) grid, dD/dr residuals weighted `grad_weight`; rank by held-out error and
    complexity; export the `top` candidates. Returns the run directory, drift_file
    (the best formula, for `train("distilled", ..., drift=...)`) and the ranked
    candidates."""
    from driftlab.drift_reports import distill_drift

    with _call():
        return distill_drift(drift, out=out, top=top, symbolic=symbolic, families=families,
                             population=population, generations=generations,
                             parsimony=parsimony, seed=seed, points=points, r_range=r_range,
                             a_range=a_range, grad_weight=grad_weight)


def compare(runs: Sequence[str | Path], *, out: str | Path | None = None,
            reference: str = "ppo",
            random_returns: str | Path | Mapping[str, float] = "measure",
            bootstrap: int = 2000, seed: int = 0) -> CompareResult:
    """Compare train run directories: learning curves, final-return IQM with 95%
    bootstrap CIs, scores normalised per env as (R - R_random) / (R_ref - R_random)
    with `reference`'s mean return as 1, the probability of improvement over it and
    performance profiles. `random_returns`: "measure" (256 random-policy episodes
    per env), "off", a JSON/YAML file or a mapping of env id to return. Returns the
    run directory, the markdown table, comparison.json's content and the plots."""
    from driftlab.comparison import compare_runs

    with _call():
        return compare_runs(runs, out=out, reference=reference, random_returns=random_returns,
                            bootstrap=bootstrap, seed=seed)
