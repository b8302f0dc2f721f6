"""`driftlab train --rerun RUN_DIR`: train again exactly what a train run directory
records, bit for bit on the same machine and software (a run recorded with other
code, libraries or numerics is re-run with a note saying so).

config.yaml holds everything that produced the run: algorithm, env, seeds, base
seed, every training setting (the preset's and the overrides alike), the drift's
resolved constants (built-in drifts) or, for a learned or distilled drift, the copy
of its parameters beside it (drift.json), and the chunking of the jitted loop (the
chunk length changes the XLA program, so it is part of the result). A sweep's
combinations are not ordinary runs (their settings are values of one program) and
are refused.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from driftlab.errors import DriftlabError
from driftlab.software import software_difference


def rerun_request(run_dir: str | Path) -> dict[str, Any]:
    """The keyword arguments of `api.train` that reproduce `run_dir` (out excluded)."""
    from driftlab.algorithms.storage import read_yaml
    from driftlab.train_checks import DEFAULT_CHUNKS  # runs from before `chunks` was recorded

    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise DriftlabError(f"--rerun {run_dir}: no config.yaml there; give a `driftlab train` "
                            "run directory")
    config = read_yaml(path)
    swept = isinstance(config, dict) and ("sweep" in config or "sweep_combination" in config)
    if not isinstance(config, dict) or config.get("command") != "train" or swept:
        what = ("a sweep or one of its combinations (their settings are values of one "
                "program, which rounds differently from a run of one setting)" if swept
                else "not a `driftlab train` run")
        raise DriftlabError(f"--rerun {run_dir}: {what}; only an ordinary train run directory "
                            "can be re-run bit for bit")
    try:
        train = dict(config["train"])
        settings = {**{k: v for k, v in train.items() if k != "hyperparams"},
                    **dict(train.get("hyperparams") or {})}
        drift_spec = dict(config["drift"] or {})
        learned = bool(config.get("drift_file"))
        if not learned:
            settings["drift"] = {k: v for k, v in drift_spec.items() if k != "kind"}
        request = {"algo": config["algo"], "env": config["env"], "seeds": int(config["seeds"]),
                   "seed": int(config["seed"]), "settings": settings,
                   "chunks": int(config.get("chunks", DEFAULT_CHUNKS)),
                   "drift": str(run_dir / "drift.json") if learned else None}
    except (KeyError, TypeError, ValueError) as err:
        raise DriftlabError(f"--rerun {run_dir}: config.yaml is damaged ({type(err).__name__}: "
                            f"{err}); it cannot say what produced the run") from None
    if learned and not (run_dir / "drift.json").is_file():
        raise DriftlabError(f"--rerun {run_dir}: the run trained a learned drift but its copy "
                            f"{run_dir / 'drift.json'} is missing")
    why = software_difference(config.get("software"))
    if why is not None:  # still worth running (same settings); said, never silent
        print(f"note: --rerun {run_dir}: {why}; the rerun trains the same settings and seeds "
              "but need not match it bit for bit", file=sys.stderr, flush=True)
    return request
