"""``cljax demo``: a small Monte Carlo study of the paper's Example 2.

Gaussian means, T = 4 tasks in d = 2, one sample per task: the MSE of separate,
consensus and cross-learning over a grid of ε, for σ = 1 and σ = 2, next to the
closed forms E_S = 2σ² and E_C = μ² + σ²/2.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from cljax.experiments._common import (at_least_two, check_memory, check_representable,
                                       check_resolution, positive_float, positive_int, seed,
                                       working_dtype)
from cljax.experiments.gaussian.studies import example2_study

SIGMAS = (1.0, 2.0)



def study_memory(realisations: int, num_eps: int, itemsize: int, tasks: int = 4,
                 dim: int = 2) -> float:
    """Bytes an Example 2 study of R realisations × E grid points holds at its peak (estimate).

    The (R, E) curve E_CL(ε) per realisation, about three times (the path solver's output, its
    reordering and the mean/standard error), plus the (R, T, d) draws a few times; measured:
    R = 2·10⁵, E = 101 in float32 peaks 100 MB above the idle process (estimate 260 MB).
    """
    return float(realisations) * (3 * num_eps + 4 * tasks * dim) * itemsize


def check_demo_args(args) -> None:
    """Refuse (UsageError naming the option) what float arithmetic or memory cannot hold."""
    dtype = working_dtype()
    check_representable("--eps-max", args.eps_max, dtype)
    check_resolution("--mu", args.mu, min(SIGMAS), "sigma", dtype)
    check_memory(study_memory(args.realisations, args.num_eps, dtype.itemsize),
                 "--realisations x --num-eps")


def run_demo(args) -> dict:
    check_demo_args(args)
    grid = jnp.linspace(0.0, args.eps_max, args.num_eps)
    key = jax.random.PRNGKey(args.seed)
    study = jax.jit(example2_study, static_argnums=(4,))
    out = {"command": "demo", "mu": args.mu, "realisations": args.realisations,
           "eps_grid": [float(e) for e in grid], "sigmas": {}}
    start = time.perf_counter()
    for i, sigma in enumerate(SIGMAS):
        r = study(jax.random.fold_in(key, i), sigma, args.mu, grid, args.realisations)
        best = int(jnp.argmin(r["E_CL"]))
        out["sigmas"][str(sigma)] = {
            "E_S": float(r["E_S"]), "E_S_se": float(r["E_S_se"]),
            "E_S_closed_form": 2 * sigma**2,
            "E_C": float(r["E_C"]), "E_C_se": float(r["E_C_se"]),
            "E_C_closed_form": args.mu**2 + sigma**2 / 2,
            "E_CL": [float(v) for v in r["E_CL"]],
            "best_eps": float(grid[best]), "E_CL_best": float(r["E_CL"][best]),
            "E_CL_best_se": float(r["E_CL_se"][best]),
        }
    out["seconds"] = time.perf_counter() - start
    return out


def print_demo(out: dict) -> None:
    print(f"Example 2 (T=4, d=2, mu={out['mu']}), {out['realisations']} Monte Carlo draws")
    for sigma, r in out["sigmas"].items():
        print(f"\nsigma = {sigma}")
        print(f"  separate      E_S  = {r['E_S']:.4f} ± {r['E_S_se']:.4f}"
              f"   (closed form {r['E_S_closed_form']:.4f})")
        print(f"  consensus     E_C  = {r['E_C']:.4f} ± {r['E_C_se']:.4f}"
              f"   (closed form {r['E_C_closed_form']:.4f})")
        print(f"  cross-learning best E_CL = {r['E_CL_best']:.4f} ± {r['E_CL_best_se']:.4f}"
              f" at eps = {r['best_eps']:.2f}")
        grid = out["eps_grid"]
        step = max(1, len(grid) // 10)
        print("  eps:  " + " ".join(f"{grid[i]:6.2f}" for i in range(0, len(grid), step)))
        print("  E_CL: " + " ".join(f"{r['E_CL'][i]:6.3f}" for i in range(0, len(grid), step)))
    print(f"\n({out['seconds']:.1f} s)")


def add_parser(sub) -> None:
    demo = sub.add_parser("demo", help="Monte Carlo study of the paper's Example 2")
    demo.add_argument("--realisations", type=at_least_two, default=1000,
                      help="Monte Carlo draws (>= 2, for a standard error)")
    demo.add_argument("--mu", type=positive_float, default=2.0)
    demo.add_argument("--eps-max", type=positive_float, default=10.0)
    demo.add_argument("--num-eps", type=positive_int, default=101)
    demo.add_argument("--seed", type=seed, default=0, help="PRNG seed, 0 <= seed < 2**32")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(run=run_demo, report=print_demo)
