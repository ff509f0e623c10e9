"""Dual encoder vs single-task, pooled, shared-only and task-only on the simulated design.

Covariate shift and posterior drift (cljax.dual_encoder.heterogeneous_regression),
T = 6 tasks, p = 5, excess test risk against the noiseless f_r, mean ± s.e. over
seeds (fits vmapped over seeds).  Prints one JSON object.

    python examples/dual_encoder_ablation.py [--samples 30 100] [--seeds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import jax
import numpy as np

from cljax.experiments.compare import problems as bp
from cljax.methods import dual_encoder as de
BASE = de.DualEncoderConfig()
CONFIGS = {
    "dual_encoder": BASE,
    "shared_only": dataclasses.replace(BASE, use_task=False),
    "task_only": dataclasses.replace(BASE, use_shared=False),
    "single_task": dataclasses.replace(BASE, use_shared=False, lam_alpha=0.0),
    "pooled": dataclasses.replace(BASE, use_task=False, tie_heads=True),
}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    out = {}
    for n in args.samples:
        keys = jax.random.split(jax.random.PRNGKey(n), args.seeds)
        probs = jax.vmap(lambda k: bp.heterogeneous_nonlinear(k, num_samples=n))(keys)
        out[str(n)] = {}
        for name, cfg in CONFIGS.items():
            print(f"N = {n}: {name}", file=sys.stderr, flush=True)

            def score(key, prob, cfg=cfg):
                params, _ = de.fit(key, prob.train.x, prob.train.y, cfg)
                return bp.excess_risk(de.predict(params, prob.x_test, cfg), prob.f_test)

            errs = np.asarray(jax.jit(jax.vmap(score))(keys, probs))
            out[str(n)][name] = {"mean": float(errs.mean()),
                                 "se": float(errs.std(ddof=1) / np.sqrt(len(errs)))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
