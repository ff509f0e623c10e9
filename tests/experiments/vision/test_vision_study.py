"""The study's summary: levels, best ε, margins and the seed-paired margin,
checked on hand-made run records against numbers worked out by hand."""

import numpy as np
import pytest

from cljax.experiments.vision.study import summarise


def record(mode, eps, seed, acc):
    return {"mode": mode, "eps": eps, "seed": seed, "domains": ["a", "b"],
            "mean_accuracy": acc, "test_accuracy": [acc, acc], "dual_history": [[0.0, 0.0]]}


ACCURACY = {  # (mode, eps) -> accuracy for seeds 0, 1
    ("separate", 0.0): (0.70, 0.72),
    ("consensus", 0.0): (0.74, 0.78),
    ("functional", 0.0): (0.60, 0.62),
    ("functional", 0.5): (0.80, 0.77),
    ("functional", 2.0): (0.71, 0.73),
}


def test_summary_levels_best_eps_and_paired_margin():
    results = [record(m, e, s, acc[s]) for (m, e), acc in ACCURACY.items() for s in (0, 1)]
    summary = summarise(results)
    t = summary["targets"]
    assert t["separate"] == pytest.approx(0.71) and t["consensus"] == pytest.approx(0.76)
    assert t["consensus_beats_separate"]
    f = t["functional"]
    assert f["best_eps"] == 0.5 and f["best_accuracy"] == pytest.approx(0.785)
    assert f["margin_over_best_baseline"] == pytest.approx(0.025)
    assert f["beats_both_by_2_points"] and f["rises_from_smallest_eps"]
    assert f["falls_back_at_largest_eps"]
    assert f["largest_eps_minus_separate"] == pytest.approx(0.01)
    # per seed against consensus: 0.80 - 0.74 = 0.06 and 0.77 - 0.78 = -0.01
    assert f["paired_baseline"] == "consensus" and f["paired_margin_seeds"] == 2
    assert f["paired_margin_mean"] == pytest.approx(0.025)
    assert f["paired_margin_sd"] == pytest.approx(np.std([0.06, -0.01], ddof=1))
    assert "parametric" not in t
    sep = next(r for r in summary["rows"] if r["mode"] == "separate")
    assert sep["num_seeds"] == 2 and sep["sd_accuracy"] == pytest.approx(np.std([0.7, 0.72], ddof=1))
