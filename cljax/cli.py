"""The ``cljax`` console script.

``cljax demo`` runs a small Monte Carlo study of the paper's Example 2 (Gaussian
means, T = 4 tasks in d = 2, one sample per task): the MSE of separate,
consensus and cross-learning over a grid of ε, for σ = 1 and σ = 2, next to the
closed forms E_S = 2σ² and E_C = μ² + σ²/2.  Every subcommand takes ``--json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from cljax.gaussian_studies import example2_centres, example2_study  # noqa: F401


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def run_demo(args) -> dict:
    grid = jnp.linspace(0.0, args.eps_max, args.num_eps)
    key = jax.random.PRNGKey(args.seed)
    study = jax.jit(example2_study, static_argnums=(4,))
    out = {"command": "demo", "mu": args.mu, "realisations": args.realisations,
           "eps_grid": [float(e) for e in grid], "sigmas": {}}
    start = time.perf_counter()
    for i, sigma in enumerate((1.0, 2.0)):
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


def add_demo_parser(sub) -> None:
    demo = sub.add_parser("demo", help="Monte Carlo study of the paper's Example 2")
    demo.add_argument("--realisations", type=positive_int, default=1000)
    demo.add_argument("--mu", type=positive_float, default=2.0)
    demo.add_argument("--eps-max", type=positive_float, default=10.0)
    demo.add_argument("--num-eps", type=positive_int, default=101)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(run=run_demo, report=print_demo)


# Each subcommand's module defines ``add_parser(subparsers)``, which adds its
# parser with ``set_defaults(run=f, report=g)``: ``f(args) -> dict`` does the
# work and ``g(dict)`` prints it for people; ``--json`` prints the dict instead.
# Every module is imported to build the parser, so they keep heavy imports
# (flax, matplotlib, tensorflow-datasets) inside their ``run`` functions.
SUBCOMMAND_MODULES: dict[str, str] = {
    "gaussian": "cljax.gaussian_cli",
    "covid": "cljax.covid_cli",
    "vision": "cljax.vision_cli",
    "compare": "cljax.compare_cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cljax", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    add_demo_parser(sub)
    for module in SUBCOMMAND_MODULES.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(argv if argv is not None else sys.argv[1:])
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["demo"] + argv)
    out = args.run(args)
    if args.json:
        print(json.dumps(out))
    else:
        args.report(out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
