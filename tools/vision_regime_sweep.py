"""Choose the digits study's regime on held-out seeds, not on the reported ones.

For every candidate dual step η_D (and optionally epochs / width / k) this runs
the study (separate, consensus, functional over an ε grid) on seeds that the
reported study does not use (default 10, 11, 12), and prints one JSON line per
(candidate, mode, ε) with the mean test accuracy over seeds and the margin over
the better baseline.  docs/vision.md records the sweep that set the defaults of
``cljax vision`` (η_D = 0.3, 30 epochs); the raw lines are in
docs/results/vision_digits_study/regime_selection.jsonl.

    python tools/vision_regime_sweep.py --dual-steps 0.1,0.3,1,10 --epochs 30
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from cljax.experiments.vision.digits import load_digits
from cljax.experiments.vision.study import run_study
from cljax.experiments.vision.training import VisionConfig


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dual-steps", default="0.1,0.3,1,10")
    p.add_argument("--functional-grid", default="0.05,0.1,0.2,0.4,0.5,0.7,1")
    p.add_argument("--seeds", default="10,11,12")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--k", type=int, default=20)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    grid = [float(e) for e in args.functional_grid.split(",")]
    base = VisionConfig(epochs=args.epochs, width=args.width, hidden=64)
    for dual_step in (float(d) for d in args.dual_steps.split(",")):
        summary = run_study(lambda seed: load_digits(k=args.k, image_size=32, seed=seed),
                            replace(base, dual_step_size=dual_step), seeds, [], grid)
        best_baseline = max(summary["targets"]["separate"], summary["targets"]["consensus"])
        for row in summary["rows"]:
            print(json.dumps({"dual_step": dual_step, "epochs": args.epochs,
                              "width": args.width, "k": args.k, "seeds": seeds,
                              "mode": row["mode"], "eps": row["eps"],
                              "mean_accuracy": round(row["mean_accuracy"], 4),
                              "sd_accuracy": round(row["sd_accuracy"], 4),
                              "margin_over_best_baseline": round(
                                  row["mean_accuracy"] - best_baseline, 4)}), flush=True)


if __name__ == "__main__":
    main()
