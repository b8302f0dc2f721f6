"""Which validated snapshot ships (discovery/selection.py): `max_score` takes the
highest validation score, which among snapshots no better than the start picks a
lucky one most of the time; `beats_start` keeps the start unless a snapshot beats it
by more than the seed noise, paired over the validation seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from scipy.stats import trim_mean

from driftlab.cli import main
from driftlab.discover_command import resolve_discovery_settings
from driftlab.discovery.config import DiscoveryConfig, DiscoveryError
from driftlab.discovery.loggers import curves
from driftlab.discovery.selection import (
    SELECTION_RULES,
    Candidate,
    SelectionError,
    choose,
    paired_lower_bound,
    select,
)

ENVS = ("a", "b")
SEEDS = 64


def simulated_run(rng: np.random.Generator, gains: list[float], seed_sd: float = 0.25,
                  run_sd: float = 0.2) -> list[Candidate]:
    """The start and len(gains) later snapshots validated on the same seeds: a seed's
    score is the seed's own level (shared by every snapshot: common random numbers)
    plus the snapshot's true gain over the start plus run noise."""
    level = {env: 1.0 + seed_sd * rng.standard_normal(SEEDS) for env in ENVS}
    found = []
    for generation, gain in enumerate([0.0, *gains]):
        scores = {env: (level[env] + gain + run_sd * rng.standard_normal(SEEDS)).tolist()
                  for env in ENVS}
        score = float(np.mean([trim_mean(scores[env], 0.25) for env in ENVS]))
        found.append(Candidate(4 * generation, score, scores))
    return found


def test_beats_start_rarely_picks_a_snapshot_no_better_than_the_start():
    """Three later snapshots exactly as good as the start: max_score ships one of them
    in about 3 runs of 4 (a max over noise); beats_start ships one in at most ALPHA =
    5% of runs (Bonferroni over the 3), here measured over 200 simulated runs."""
    rng = np.random.default_rng(0)
    runs = [simulated_run(rng, [0.0, 0.0, 0.0]) for _ in range(200)]
    by_max = np.mean([choose(run, "max_score").generation != 0 for run in runs])
    by_test = np.mean([choose(run, "beats_start", resamples=1000).generation != 0
                       for run in runs])
    assert by_max > 0.6, by_max
    assert by_test <= 0.08, by_test  # 0.05 + 2.4 binomial s.e.


def test_beats_start_picks_a_snapshot_better_by_more_than_the_noise():
    """A snapshot 0.15 better than the start (paired noise sd 0.28 per seed, so the
    score difference's s.e. is about 0.03 and the bound at level 0.05/3 sits about
    0.07 below the estimate) is chosen; of two that pass, the higher."""
    rng = np.random.default_rng(1)
    chosen = [choose(simulated_run(rng, [0.0, 0.15, 0.0]), "beats_start", resamples=1000)
              for _ in range(40)]
    assert np.mean([c.generation == 8 for c in chosen]) >= 0.95
    assert all(c.lower_bounds[8] > 0 for c in chosen if c.generation == 8)
    two = choose(simulated_run(rng, [0.3, 0.6]), "beats_start", resamples=1000)
    assert two.generation == 8 and min(two.lower_bounds.values()) > 0


def test_identical_snapshots_keep_the_start_and_max_score_breaks_ties_early():
    scores = {env: [1.0, 0.5, 1.5, None] for env in ENVS}  # a seed without a finite score
    found = [Candidate(g, 1.0, scores) for g in (0, 4, 8)]
    picked = choose(found, "beats_start")
    assert picked.generation == 0 and picked.lower_bounds == {4: 0.0, 8: 0.0}
    assert picked.level == pytest.approx(0.025)
    assert choose(found, "max_score").generation == 0
    assert paired_lower_bound(scores, scores, 0.05) == 0.0


def test_beats_start_refuses_records_without_per_seed_scores_and_unknown_rules():
    found = [Candidate(0, 1.0, {"a": [1.0]}), Candidate(4, 1.2, None)]
    with pytest.raises(SelectionError, match="generation 4 keeps no per-seed scores"):
        choose(found, "beats_start")
    assert choose(found, "max_score").generation == 4  # older records: the old rule works
    with pytest.raises(SelectionError, match="unknown selection rule 'best'"):
        choose(found, "best")
    with pytest.raises(SelectionError, match="cannot be paired"):
        paired_lower_bound({"a": [1.0, 2.0]}, {"a": [1.0]}, 0.05)
    with pytest.raises(DiscoveryError, match="selection must be one of max_score, beats_start"):
        DiscoveryConfig.from_dict(resolve_discovery_settings({"selection": "best"}))


def test_trackers_get_the_validation_without_its_per_seed_scores():
    record = {"generation": 4, "fitness_mean": 1.0, "rollout_fitness": [[1.0]],
              "validation": {"score": 1.1, "envs": {"a": {"score_iqm": 1.1,
                                                          "scores": [1.0, 1.2]}}}}
    assert curves(record) == {"fitness_mean": 1.0, "validation": {
        "score": 1.1, "envs": {"a": {"score_iqm": 1.1}}}}
    assert record["validation"]["envs"]["a"]["scores"] == [1.0, 1.2]  # not mutated


def test_a_discovery_with_beats_start_records_per_seed_scores_and_its_choice(tmp_path, capsys):
    """A tiny PPO-family run whose ES cannot move (sigma 1e-10): every snapshot is the
    start's drift, validated on the same seeds, so beats_start keeps the start with
    every paired bound exactly 0, and the choice and the rule reach the shipped
    provenance."""
    from test_transfer import ACROBOT, tiny_transfer  # tests/ is on sys.path (pytest)

    settings = tmp_path / "s.yaml"
    settings.write_text(yaml.safe_dump(tiny_transfer(
        selection="beats_start", generations=1, randomize={}, normalization="random_ppo",
        rollouts_per_member=1)))
    run = tmp_path / "run"
    assert main(["discover", "--config", str(settings), "--out", str(run),
                 "--no-progress"]) == 0
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    entry = record["validation"]["envs"][ACROBOT]
    assert len(entry["scores"]) == 2  # validation_seeds
    finite = [v for v in entry["scores"] if v is not None]
    assert trim_mean(finite, 0.25) == pytest.approx(entry["score_iqm"])
    start = json.loads((run / "snapshots" / "start-validation.json").read_text())
    assert start["envs"][ACROBOT]["scores"] == entry["scores"]
    selected = json.loads((run / "drift_selected.json").read_text())
    assert selected["generation"] == 0 and selected["selection_rule"] == "beats_start"
    assert selected["selection"] == SELECTION_RULES["beats_start"]
    assert selected["selection_lower_bounds"] == {"1": 0.0}
    assert select(run, "beats_start").generation == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["discovery"][
        "selection"] == "beats_start"
    assert main(["drifts", "--ship", str(run), "--name", "tiny-sel", "--dest",
                 str(tmp_path / "shipped")]) == 0
    provenance = yaml.safe_load((tmp_path / "shipped" / "tiny-sel" / "provenance.yaml")
                                .read_text())
    assert provenance["selection_rule"] == "beats_start"
    assert provenance["selected_generation"] == 0
    assert provenance["selection_lower_bounds"] == {"1": 0.0}
    _reselect_the_run(run, tmp_path, capsys)


def _reselect_the_run(run, tmp_path, capsys):
    """`discover --reselect RUN --selection RULE` chooses again from the run's records
    (nothing trained), records the change where a later resume reads it, and refuses
    bad input with driftlab's one-line error (exit 2)."""
    from driftlab.discovery_settings import check_unchanged_since_start, read_run_config

    # Generation 1's validation score raised by hand: max_score now picks it, while
    # beats_start (the same per-seed scores as the start) still keeps the start.
    lines = (run / "metrics.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    last["validation"]["score"] = 5.0
    (run / "metrics.jsonl").write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    before = (run / "drift.json").read_bytes()
    assert main(["discover", "--reselect", str(run), "--selection", "max_score"]) == 0
    selected = json.loads((run / "drift_selected.json").read_text())
    assert selected["generation"] == 1 and selected["selection_rule"] == "max_score"
    assert selected["reselected_from"] == "beats_start"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["discovery"]["selection"] == "max_score"
    change = config["reselections"][-1]
    assert (change["from"], change["to"], change["previous_generation"],
            change["generation"]) == ("beats_start", "max_score", 0, 1)
    assert "software" in change
    started = yaml.safe_load((run / "config.started.yaml").read_text())
    assert started["discovery"]["selection"] == "max_score"
    check_unchanged_since_start(run, read_run_config(run))  # a resume is still accepted
    assert (run / "drift.json").read_bytes() == before  # the ES's last mean is untouched
    assert main(["discover", "--reselect", str(run), "--selection", "beats_start"]) == 0
    assert json.loads((run / "drift_selected.json").read_text())["generation"] == 0
    assert len(yaml.safe_load((run / "config.yaml").read_text())["reselections"]) == 2
    for argv, said in ((["--selection", "beats-start"], "did you mean beats_start?"),
                       ([], "go together"),
                       (["--selection", "max_score", "--preset", "x"], "takes no --preset"),
                       (["--selection", "max_score", "--reselect", str(tmp_path / "shipped")],
                        "has no config.yaml; pass a discovery run directory")):
        capsys.readouterr()
        assert main(["discover", "--reselect", str(run), *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert said in err and "\n" not in err, err


def test_a_run_directory_stands_for_its_selected_drift_not_the_last_mean(tmp_path):
    """A discovery with validation envs exports the ES's last mean (drift.json) and the
    validation-selected snapshot (drift_selected.json); the run directory as a drift
    (evaluate, train --drift, init_drift, inspect) is the selected one, as shipped."""
    from driftlab.algorithms.drift_io import load_drift, save_drift
    from driftlab.algorithms.drifts import make_drift

    last, chosen = make_drift("ppo", eps=0.3), make_drift("ppo", eps=0.1)
    save_drift(tmp_path, last, last.default_params, name="drift")
    def eps(path) -> float:
        return float(load_drift(path)[1]["eps"])

    assert eps(tmp_path) == pytest.approx(0.3)  # no selection: drift.json
    save_drift(tmp_path, chosen, chosen.default_params, name="drift_selected")
    assert eps(tmp_path) == pytest.approx(0.1)
    assert eps(tmp_path / "drift.json") == pytest.approx(0.3)  # still reachable
