"""Validate a discovery run's snapshots again, keeping each seed's score, and apply
both selection rules (discovery/selection.py).

    python docs/results/transfer-wide/revalidate.py RUN_DIR [--out FILE]

Runs whose validation records predate per-seed scores can only use `max_score`.
Validation is deterministic on CPU (the same fixed seeds, the run's settings and
cached reference returns), so each snapshot's score must come out as recorded; the
script refuses to go on if one does not. It then prints and writes (default
RUN_DIR/revalidation.json) each snapshot's score, its paired lower bound over the
start and what `max_score` and `beats_start` choose. It changes nothing else in
RUN_DIR.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from driftlab.algorithms.drift_io import load_drift
from driftlab.algorithms.storage import read_json, write_json
from driftlab.discovery.loop import Discovery
from driftlab.discovery.references import resolve_random_returns, resolve_references
from driftlab.discovery.selection import Candidate, choose, seed_scores_of
from driftlab.discovery_settings import read_run_config, resumed_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    run_dir: Path = args.run_dir
    config = resumed_config(run_dir, {}, read_run_config(run_dir))
    randoms = resolve_random_returns(config, run_dir)
    discovery = Discovery(config, resolve_references(config, run_dir, randoms),
                          random_returns=randoms)
    found, validations = [], {}
    for path in sorted((run_dir / "snapshots").glob("generation-*.json")):
        generation = int(read_json(path)["generation"])
        recorded = float(read_json(path)["validation_score"])
        _, params = load_drift(str(path))
        validation = discovery.validation(params)
        if not math.isclose(validation["score"], recorded, rel_tol=1e-9, abs_tol=1e-12):
            raise SystemExit(f"generation {generation}: validation score {validation['score']!r} "
                             f"now, {recorded!r} recorded; not the run's validation")
        print(f"generation {generation}: score {validation['score']:.4f} (as recorded)",
              flush=True)
        validations[generation] = validation
        found.append(Candidate(generation, validation["score"], seed_scores_of(validation)))
    by_max, by_test = choose(found, "max_score"), choose(found, "beats_start")
    bounds = by_test.lower_bounds or {}
    for generation, bound in bounds.items():
        print(f"generation {generation}: paired lower bound of (score - start's) at one-sided "
              f"level {by_test.level:.4g}: {bound:+.4f}")
    print(f"max_score selects generation {by_max.generation} ({by_max.score:.4f}); "
          f"beats_start selects generation {by_test.generation} ({by_test.score:.4f})")
    write_json(args.out or run_dir / "revalidation.json", {
        "max_score": by_max.generation, "beats_start": by_test.generation,
        "level": by_test.level, "lower_bounds": {str(g): b for g, b in bounds.items()},
        "validations": {str(g): v for g, v in validations.items()}})


if __name__ == "__main__":
    main()
