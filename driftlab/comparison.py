"""A comparison folder of train runs: learning curves, IQM tables, normalised scores,
the probability of improvement over a reference and performance profiles (used by
`driftlab compare` and `driftlab.api.compare`; the statistics are in
driftlab.analysis.compare)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftlab.errors import DriftlabError
from driftlab.hints import did_you_mean, suggestion


@dataclass
class CompareResult:
    """What `compare_runs` wrote: the folder, comparison.md's text, comparison.json's
    content and the plots."""

    run_dir: Path
    text: str
    data: dict[str, Any]
    plots: list[Path]


def _random_returns_given(given: Mapping[str, float]) -> dict[str, float]:
    bad = {k: v for k, v in given.items() if isinstance(v, bool)
           or not isinstance(v, int | float) or not math.isfinite(v)}
    if bad:
        raise DriftlabError(f"random-policy returns must be finite numbers per env id, "
                            f"got {bad!r}")
    return {str(k): float(v) for k, v in given.items()}


def compare_runs(runs: Sequence[str | Path], *, out: str | Path | None = None,
                 reference: str = "ppo",
                 random_returns: str | Path | Mapping[str, float] = "measure",
                 bootstrap: int = 2000, seed: int = 0) -> CompareResult:
    """Group the seeds of train run directories `runs` by env and algorithm and write
    comparison.md / .json and plots to a new run directory. Scores are normalised per
    env as (R - R_random) / (R_ref - R_random), R_ref the `reference` algorithm's mean
    final return; `random_returns`: "measure" (256 random-policy episodes per env),
    "off", a JSON/YAML file or a mapping of env id to return."""
    from driftlab.algorithms.config import check_seed
    from driftlab.algorithms.storage import atomic_write_text, write_json, write_yaml
    from driftlab.analysis.compare import (
        group_statistics,
        load_runs,
        random_returns_of,
        read_random_returns,
        statistics_bytes,
        table_markdown,
    )
    from driftlab.analysis.surfaces import AnalysisError
    from driftlab.memory import check_host_bytes
    from driftlab.rundir import check_output_dir, new_run_dir
    from driftlab.software import software_record

    runs = [str(r) for r in runs]
    check_output_dir(out)  # before any run is read
    if bootstrap < 10:
        raise DriftlabError(f"--bootstrap must be >= 10, got {bootstrap}")
    check_seed(seed, "--seed")
    measure = isinstance(random_returns, str) and random_returns == "measure"
    try:
        groups = load_runs(runs)
        if isinstance(random_returns, Mapping):
            randoms, source = _random_returns_given(random_returns), "given"
        elif random_returns == "off":
            randoms, source = None, "off"
        elif measure:
            randoms, source = None, "measured (256 random-policy episodes per env, key 0)"
        else:
            randoms = read_random_returns(random_returns)
            source = f"read from {random_returns}"
    except AnalysisError as err:
        raise DriftlabError(str(err)) from None
    labels = sorted({g.label for g in groups})
    if reference not in labels:  # a typo would silently normalise by nothing
        # "lpo" for the label "lpo (run-name)": the algorithm is what a user types.
        same_algorithm = [label for label in labels if label.split(" (")[0] == reference]
        hint = (suggestion(same_algorithm, quote=True) if same_algorithm
                else did_you_mean(reference, labels))
        raise DriftlabError(f"--reference {reference!r} is not among the runs' labels"
                            f"{hint}: {', '.join(labels)}")
    check_host_bytes(statistics_bytes(groups, bootstrap),
                     f"--bootstrap {bootstrap} over these runs", "use fewer resamples (default "
                     "2000)")
    if measure:
        randoms = random_returns_of(groups)
    stats = group_statistics(groups, reference, randoms, bootstrap, seed)
    norm = stats.norm
    run_dir = new_run_dir(out, "compare", "runs")
    plots = stats.plot(groups, run_dir, "Performance profiles: fraction of runs above each "
                                        "normalised score", seed)
    note = f"{norm.note}; random-policy returns {source}"
    text = table_markdown(stats.rows, stats.normalized, stats.improvement, note, reference)
    write_yaml(run_dir / "config.yaml", {
        "command": "compare", "runs": runs, "reference": reference, "bootstrap": bootstrap,
        "seed": seed, "random_returns": dict(random_returns) if isinstance(random_returns, Mapping)
        else str(random_returns), "software": software_record()})
    data = {
        "final": [r.__dict__ for r in stats.rows],
        "normalized": stats.normalized,
        "normalization": {"scheme": norm.scheme, "note": norm.note, "random_returns": source,
                          "random_return": norm.random_returns,
                          "reference_return": norm.reference_returns},
        **stats.record(),
        "groups": {f"{g.env} | {g.label}": g.run_dirs for g in groups}}
    write_json(run_dir / "comparison.json", data)
    atomic_write_text(run_dir / "comparison.md", text)
    return CompareResult(run_dir, text, data, [Path(p) for p in plots])
