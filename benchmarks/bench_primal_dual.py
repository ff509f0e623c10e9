"""Steps for PrimalDual to reach the CVXPY saddle point, for each multiplier update.

Convex instances of P_CLF (issue 17): a linear model f(x, θ) = x θ, squared loss, the
output-distance constraint mean(d(f(x, θ_t), f(x, θ_g))) ≤ ε with d squared or L1,
T = 2–5 tasks, 6–14 samples, d = 1–3, ε from tight to slack; full-batch steps with
``optax.sgd(0.05)`` as the primal optimiser, one jitted, vmapped run per shape.  An
instance counts as reached at the first step k after which, at every later step, the
objective gap is ≤ 1e-4 relative, the violation max_t [g_t − ε]₊ ≤ 1e-4 and
max_t |λ_t − λ*_t| ≤ 1e-3 (λ* from Clarabel).  One JSON line.

    python benchmarks/bench_primal_dual.py [--steps 5000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

try:
    from _machine import machine_info
except ImportError:  # run as a module
    from benchmarks._machine import machine_info

from cljax.solvers import (PrimalDual, l1_distance, method_of_multipliers,
                           momentum_ascent, nupi_ascent, optimistic_ascent, paper_dual_ascent,
                           squared_distance)

jax.config.update("jax_enable_x64", True)  # accuracy to 1e-4 and beyond: float64, as the tests

SHAPES = ((2, 6, 1), (3, 10, 2), (4, 8, 3), (5, 14, 3))
EPS = {"squared": (0.02, 0.1, 0.3, 2.0), "l1": (0.05, 0.2, 0.5, 3.0)}


def rules():
    return {
        "method_of_multipliers_rho1 (default)": method_of_multipliers(1.0),
        "method_of_multipliers_rho3": method_of_multipliers(3.0),
        "paper_dual_ascent_eta10": paper_dual_ascent(10.0),
        "plain_ascent_eta1": paper_dual_ascent(1.0),
        "momentum_ascent_eta0.2_beta0.5": momentum_ascent(0.2, 0.5),
        "nupi_ascent_eta1_kp5_ki1": nupi_ascent(1.0, kp=5.0, ki=1.0),
        "optimistic_ascent_eta1": optimistic_ascent(1.0),
    }


def _test_problems():
    """The instance generator and the Clarabel reference of the tests (the same instances)."""
    path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "solvers" / "test_primal_dual_cvxpy.py"
    spec = importlib.util.spec_from_file_location("primal_dual_cvxpy_problems", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_instance, module.clarabel


def steps_to_reach(objective, violation, duals, value, lam):
    ok = ((np.abs(objective - value) <= 1e-4 * abs(value)) & (violation <= 1e-4)
          & (np.max(np.abs(duals - lam), axis=-1) <= 1e-3))
    bad = np.nonzero(~ok)[0]
    first = 0 if bad.size == 0 else int(bad[-1]) + 1
    return first if first < ok.size else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    args = parser.parse_args(argv)
    instance, clarabel = _test_problems()
    start = time.perf_counter()
    out = {"benchmark": "bench_primal_dual", "steps": args.steps,
           "primal_optimizer": f"sgd({args.learning_rate})", "shapes_T_N_d": SHAPES,
           "eps": EPS, "seeds": args.seeds, "criterion": "gap<=1e-4 rel, violation<=1e-4, "
           "|lambda-lambda*|<=1e-3 from that step on", "results": {}}
    for kind, distance in (("squared", squared_distance), ("l1", l1_distance)):
        table = {name: [] for name in rules()}
        finals = {name: [] for name in rules()}
        for t, n, d in SHAPES:
            cases = [(instance(s, t, n, d), e) for s in range(args.seeds) for e in EPS[kind]]
            x = jnp.asarray(np.stack([c[0][0] for c in cases]))
            y = jnp.asarray(np.stack([c[0][1] for c in cases]))
            eps = jnp.asarray([c[1] for c in cases])
            refs = [clarabel(*c[0], c[1], kind)[::2] for c in cases]  # (value, λ*)
            for name, rule in rules().items():
                pd = PrimalDual(lambda p, xx: xx @ p, lambda o, yy: (o - yy) ** 2,
                                optax.sgd(args.learning_rate), distance=distance, dual=rule)
                run = jax.jit(jax.vmap(lambda xx, yy, e: pd.run(jnp.zeros((t, d)), (xx, yy), e,
                                                                 args.steps)[1]))
                info = run(x, y, eps)
                objective = np.asarray(jnp.mean(info.loss, axis=-1))
                for i, (value, lam) in enumerate(refs):
                    table[name].append(steps_to_reach(objective[i], np.asarray(info.violation[i]),
                                                      np.asarray(info.duals[i]), value, lam))
                    finals[name].append(float(np.max(np.abs(np.asarray(info.duals[i, -1]) - lam))))
        summary = {}
        for name, steps in table.items():
            reached = [s for s in steps if s is not None]
            errors = np.asarray(finals[name])
            summary[name] = {
                "reached": len(reached), "instances": len(steps),
                "median_steps": float(np.median(reached)) if reached else None,
                "max_steps": max(reached) if reached else None,
                "median_final_dual_error": float(np.nanmedian(errors)),
                "diverged": int(np.sum(~np.isfinite(errors))),
            }
        out["results"][kind] = summary
    out["seconds"] = time.perf_counter() - start
    out["machine"] = machine_info()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
