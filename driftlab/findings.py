"""What driftlab has found: the shipped drifts' measured results as one table, read
from each drift's own evaluation files (the one place its numbers live), for the
quickstart's closing and `driftlab drifts`.

Two formats are read: a `driftlab evaluate` report (`evaluation/report.json`: per-env
IQMs, the PPO-normalised aggregate IQM and the probability of improvement over PPO,
all with 95% bootstrap CIs) and the older per-cell `evaluation.json` of lpo-cartpole
(its meta-training cell and its held-out cells at their own presets).
"""

from __future__ import annotations

import math
from typing import Any

from driftlab.algorithms.storage import read_json

HEADER = ("| shipped drift | env (role) | steps | drift IQM | PPO IQM | / PPO, normalised IQM "
          "[95% CI] |\n|---|---|---:|---:|---:|---|")


def _number(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _ci(value: float, low: float, high: float) -> str:
    from driftlab.evaluation import format_ci  # evaluate's own report format

    return format_ci(value, low, high, 2)


def report_rows(name: str, data: dict[str, Any], roles: dict[str, str]) -> list[str]:
    """Rows of a `driftlab evaluate` report: one per env, then the aggregate and the
    probability of improvement over PPO. `roles`: env id -> its role for this drift."""
    label = data["algorithms"][0]["name"]
    ppo = {row["env"]: row for row in data["per_env"] if row["label"] == "ppo"}
    rows = []
    for row in data["per_env"]:
        if row["label"] != label:
            continue
        env = row["env"]
        rows.append(f"| {name} | {env} ({roles.get(env, 'evaluated')}) | {row['timesteps']:,} | "
                    f"{_number(row['iqm'], 2)} | {_number(ppo[env]['iqm'], 2)} | "
                    f"{_ci(row['normalized_iqm'], row['normalized_ci_low'], row['normalized_ci_high'])} |")
    total = data["aggregate"][label]
    better = data["probability_of_improvement"]["algorithms"][label]
    rows.append(f"| {name} | **all {len(data['envs'])} envs** ({data['seeds']} seeds each) | | | "
                f"| **{_ci(total['iqm'], total['ci_low'], total['ci_high'])}**; P(better than PPO) "
                f"{_ci(better['probability'], better['ci_low'], better['ci_high'])} |")
    return rows


def cell_rows(name: str, data: dict[str, Any]) -> list[str]:
    """Rows of lpo-cartpole's per-cell evaluation.json: its meta-training cell at x1
    budget and the held-out cells at each env's own preset. Its normalised scores are
    1 + (x - PPO mean) / |PPO mean|, not the random-to-PPO scale of the other rows, so
    the column is left empty: the IQMs carry the comparison."""
    rows = []
    for cell in data["cells"]:
        title = cell["cell"]
        if not (title.endswith("meta x1") or title.endswith("held-out preset")):
            continue
        by_label = {row["label"]: row for row in cell["final"]}
        mine = next(label for label in by_label if f"shipped {name})" in label)
        role = "meta-training" if "meta" in title.split()[-2] else "held out"
        rows.append(f"| {name} | {cell['env']} ({role}) | {cell['timesteps']:,} | "
                    f"{_number(by_label[mine]['iqm'])} | {_number(by_label['ppo']['iqm'])} | "
                    "- |")
    return rows


def findings() -> str | None:
    """The markdown table of every shipped drift's measured results (None if no
    shipped drift has an evaluation)."""
    from driftlab.algorithms.shipped import list_shipped, shipped_dir
    from driftlab.algorithms.storage import read_yaml

    rows: list[str] = []
    for name in list_shipped():
        folder = shipped_dir(name)
        if folder is None:
            continue
        report = folder / "evaluation" / "report.json"
        if report.is_file():
            provenance = read_yaml(folder / "provenance.yaml")
            roles = {**{env: "test" for env in provenance.get("test_envs") or []},
                     **{env: "meta-training" for env in provenance.get("meta_envs") or []},
                     **{env: "validation" for env in provenance.get("validation_envs") or []}}
            rows += report_rows(name, read_json(report), roles)
        elif (folder / "evaluation.json").is_file():
            rows += cell_rows(name, read_json(folder / "evaluation.json"))
    return "\n".join([HEADER, *rows]) if rows else None
