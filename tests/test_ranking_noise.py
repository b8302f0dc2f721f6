"""Split-half rank reliability of an ES generation (discovery/ranking_noise.py), and
the per-rollout fitness the loop logs for it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from driftlab.discovery.ranking_noise import (
    ranking_record,
    rollouts_for,
    signal_upper_bound,
    spearman_brown,
    split_half_rank_correlation,
    summarise,
    variance_components,
)


def test_reproducible_order_is_one_and_pure_noise_is_near_zero():
    rng = np.random.default_rng(0)
    signal = np.arange(16.0)
    assert split_half_rank_correlation(signal + 1e-3 * rng.normal(size=(4, 16))) == 1.0
    noise = rng.normal(size=(4, 4000))  # 4000 members: the sampling sd of rho is ~0.016
    assert abs(split_half_rank_correlation(noise)) < 0.06
    # members whose means differ by 1 sd of one rollout's noise: clearly between the two
    mixed = split_half_rank_correlation(rng.normal(size=4000) + rng.normal(size=(4, 4000)))
    assert 0.4 < mixed < 0.8


def test_halves_are_even_and_odd_rollouts():
    # rollouts 0, 2 rank the members one way, 1, 3 the opposite way
    up, down = np.arange(5.0), -np.arange(5.0)
    assert split_half_rank_correlation(np.stack([up, down, up, down])) == pytest.approx(-1.0)


def test_spearman_brown_and_degenerate_inputs():
    assert spearman_brown(0.5) == pytest.approx(2 / 3)
    assert spearman_brown(0.0) == 0.0 and spearman_brown(1.0) == 1.0
    assert spearman_brown(-0.4) == 0.0  # a reversed order holds no reliability
    assert np.isnan(spearman_brown(float("nan")))
    same = np.ones((2, 8))  # identical members: no order to reproduce
    assert np.isnan(split_half_rank_correlation(same))
    assert ranking_record(np.ones((1, 8))) is None  # one rollout: nothing to split
    with pytest.raises(ValueError, match="rollouts >= 2"):
        split_half_rank_correlation(np.ones((1, 8)))
    record = ranking_record(np.stack([np.arange(4.0)] * 2))
    assert record == {"split_half": 1.0, "full": 1.0}


def test_variance_components_recover_known_signal_and_noise():
    """member effects sd 1, a shared rollout effect sd 5 (removed), noise sd 2: signal
    variance 1, noise 4, so 4 rollouts give reliability 0.5 and 16 give 0.8."""
    rng = np.random.default_rng(1)
    members, rollouts = 3000, 6
    x = (rng.normal(size=members)[None] + 5 * rng.normal(size=rollouts)[:, None]
         + 2 * rng.normal(size=(rollouts, members)))
    signal, noise = variance_components(x)
    assert signal == pytest.approx(1.0, rel=0.1) and noise == pytest.approx(4.0, rel=0.05)
    assert rollouts_for(0.5, 1.0, 4.0) == pytest.approx(4.0)
    assert rollouts_for(0.8, 1.0, 4.0) == pytest.approx(16.0)
    assert rollouts_for(0.5, -0.1, 4.0) == float("inf")  # no signal: no rollouts suffice
    assert all(np.isnan(variance_components(np.ones((1, 5)))))


def test_signal_upper_bound_covers_the_true_spread_at_its_level():
    """Members' true effects sd 1 (signal variance 1), noise sd 2 (variance 4), 4
    rollouts x 8 members over 3 generations: the 95% bound on signal / noise (true
    0.25) must lie above it in 95% of 4000 simulated runs (binomial sd 0.0034), and the
    sd bound must exceed the true sd 1 about as often."""
    rng = np.random.default_rng(7)
    ratios, sds = [], []
    for _ in range(4000):
        runs = [rng.normal(size=8)[None] + 3 * rng.normal(size=4)[:, None]
                + 2 * rng.normal(size=(4, 8)) for _ in range(3)]
        ratio, sd = signal_upper_bound(runs)
        ratios.append(ratio)
        sds.append(sd)
    assert np.mean(np.array(ratios) >= 0.25) == pytest.approx(0.95, abs=0.015)
    assert np.mean(np.array(sds) >= 1.0) == pytest.approx(0.95, abs=0.03)
    # pure noise with many members: the bound shrinks towards 0
    ratio, sd = signal_upper_bound([rng.normal(size=(8, 2000))])
    assert 0.0 <= ratio < 0.02 and sd < 0.15
    assert all(np.isnan(signal_upper_bound([np.ones((1, 5)), np.full((3, 4), np.nan)])))


def test_summary_averages_generations_and_skips_missing():
    records = [{"ranking_reliability": {"split_half": 0.2, "full": 0.33}},
               {"ranking_reliability": {"split_half": 0.4, "full": 0.57}},
               {"ranking_reliability": {"split_half": float("nan"), "full": float("nan")}},
               {"ranking_reliability": {"split_half": None, "full": None}},  # NaN in JSON
               {"generation": 4}]
    out = summarise(records)
    assert out["generations"] == 2 and out["split_half_mean"] == pytest.approx(0.3)
    assert out["full"] == pytest.approx(0.6 / 1.3)
    assert summarise([])["generations"] == 0
    x = [[1.0, 2.0, 3.0], [1.5, 2.5, 2.0]]
    signal, noise = variance_components(np.array(x))
    both = summarise([{"rollout_fitness": x, "ranking_reliability": {"split_half": 0.5}}])
    assert both["signal_variance"] == signal and both["noise_variance"] == noise
    assert both["rollouts_for_half"] == rollouts_for(0.5, signal, noise)
    ratio, sd = signal_upper_bound([np.array(x)])
    assert both["signal_sd_upper"] == sd and both["rollouts_for_half_at_least"] == 1 / ratio


def test_rollout_fitness_averages_to_the_generation_fitness(tmp_path):
    """Plain (non-randomised) path: each rollout's fitness alone, (rollouts, members),
    averages to the fitness the ES ranks on; the record carries the reliability."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "discovery_scripts"))
    from shard_generation import config as tiny_config

    from driftlab.discovery.loop import Discovery, run_discovery

    config = dataclasses.replace(tiny_config(4), rollouts_per_member=2)
    discovery = Discovery(config)
    _, info = discovery.step(discovery.init())
    per_rollout = np.asarray(info["rollout_fitness"])
    assert per_rollout.shape == (2, 4)
    np.testing.assert_allclose(per_rollout.mean(axis=0), np.asarray(info["fitness"]), rtol=1e-6)
    run_discovery(config, tmp_path, progress=False, discovery=discovery)
    (record,) = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert set(record["ranking_reliability"]) == {"split_half", "full"}


def test_progress_plot_adds_reliability_and_validation_panels(tmp_path):
    """progress.png gains a panel for the members' split-half rank correlation and one
    for the validation scores when the records hold them (one panel wider each)."""
    import matplotlib.image as mpimg

    from driftlab.analysis.curves import plot_discovery_progress

    plain = [{"generation": g, "fitness_mean": 0.5, "fitness_min": 0.4, "fitness_max": 0.6}
             for g in range(1, 9)]
    richer = [{**r, "ranking_reliability": {"split_half": None if g == 1 else 0.1 * g},
               **({"validation": {"score": 1.0 + 0.01 * g}} if g % 4 == 0 else {})}
              for g, r in enumerate(plain, 1)]
    narrow = mpimg.imread(plot_discovery_progress(plain, tmp_path / "a.png", "a"))
    wide = mpimg.imread(plot_discovery_progress(richer, tmp_path / "b.png", "b"))
    assert narrow.shape[0] == wide.shape[0]
    assert wide.shape[1] == pytest.approx(3 * narrow.shape[1], rel=0.02)
    # the start's validation score joins the validation panel, at generation 0
    with_start = mpimg.imread(plot_discovery_progress(richer, tmp_path / "c.png", "c",
                                                      start_validation=1.0))
    assert with_start.shape == wide.shape and not np.array_equal(with_start, wide)
    # randomised settings: the members' mean return relative to PPO's is drawn too
    quoted = [{**r, "score_of_means": 0.9} for r in plain]
    drawn = mpimg.imread(plot_discovery_progress(quoted, tmp_path / "d.png", "d"))
    assert drawn.shape == narrow.shape and not np.array_equal(drawn, narrow)


def test_trackers_get_the_record_without_the_raw_rollout_fitness(tmp_path):
    """metrics.jsonl keeps rollout_fitness; TensorBoard / W&B get the curves only."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "discovery_scripts"))
    from shard_generation import config as tiny_config

    from driftlab.discovery.loggers import MetricsLogger

    class Recorder:
        logged: list = []

        def log(self, record, step):
            self.logged.append((record, step))

        def close(self):
            pass

    logger = MetricsLogger(tmp_path, tiny_config(4))
    logger._trackers = Recorder()
    logger.write({"generation": 3, "fitness_mean": 0.5, "rollout_fitness": [[1.0, 2.0]],
                  "ranking_reliability": {"split_half": 0.2, "full": 0.33}})
    logger.close()
    ((record, step),) = Recorder.logged
    assert step == 3 and "rollout_fitness" not in record and "ranking_reliability" in record
    line = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert line["rollout_fitness"] == [[1.0, 2.0]]
