"""Choosing ε without test data (the paper's open question 2): oracle, SURE, K-fold CV and
resilient cross-learning, side by side (issue 16, part 3).

* **Gaussian designs** (:func:`gaussian_eps_choice`): the designs of ``cljax gaussian``
  (:func:`cljax.experiments.gaussian.studies.standard_designs`).  On the same draws,
  E_CL at the oracle ε (the grid ε with the least mean error), at the ε minimising each
  draw's SURE(ε) and K-fold CV(ε) (:func:`cljax.experiments.gaussian.studies.monte_carlo`),
  and resilient cross-learning (:func:`cljax.estimators.resilient_means`, base ε = 0) with
  the fixed rule α = 2/(d τ̄²) (:func:`cljax.estimators.resilient_alpha`, τ̄² the mean of
  the known τ_t² = σ²/N_t, as SURE uses them) and, to show the ceiling of that family,
  with the best α of a grid α_rule·2^k, k = −4..4 (an oracle, like the oracle ε).
* **Regression** (:func:`regression_eps_choice`): the ``graph_linear`` benchmark of
  ``cljax compare``; parametric cross-learning (ADMM) at the oracle ε of the CV grid and
  at the CV ε, resilient cross-learning with the rule α, and the penalty family (μ by CV
  and the oracle μ), scored by the excess test risk.  SURE is not defined there.

Run: ``python -m cljax.experiments.compare.eps_choice --realisations 1000 --seeds 20
--out docs/results/penalty_eps_choice.json`` (one JSON object; minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from cljax.estimators._penalty import resilient_alpha, resilient_means
from cljax.experiments._common import at_least_two, dumps_strict, mean_se, seed

ALPHA_FACTORS = tuple(2.0**k for k in range(-4, 5))


def _row(values):
    m, se = mean_se(np.asarray(values, float))
    return {"mean": float(m), "se": float(se)}


def gaussian_eps_choice(key, design, realisations: int, *, folds: int = 5, num_eps: int = 101,
                        num_steps: int = 3000) -> dict:
    """MSE (mean, se over draws) of every ε choice on one Gaussian design (same draws).

    Returns a dict of rows E_S, E_C, E_JS, E_CL_oracle, E_CL_SURE, E_CL_CV (when every
    N_t ≥ 2), resilient (rule α) and resilient_oracle_alpha, each with its ratio to the
    oracle ε, plus α and the effective radii of the resilient fit.
    """
    from cljax.experiments.gaussian import studies as gs

    grid = gs.default_eps_grid(design, num_eps)
    can_cv = int(np.min(design.samples)) >= 2
    errors = gs.monte_carlo(key, design, grid, realisations, selection=True,
                            folds=folds if can_cv else 0)
    rows = gs.selection_summary(errors, grid)
    oracle = rows["E_CL_oracle"]["mean"]

    # the same draws as monte_carlo: one key per realisation, the same _draw
    dtype = jnp.result_type(float)
    centres = jnp.asarray(design.centres, dtype)
    samples = jnp.asarray(design.samples)
    n_max = int(np.max(design.samples))
    keys = jax.random.split(key, realisations)
    means = jax.vmap(lambda k: gs._draw(k, centres, samples, design.sigma, n_max)[2])(keys)
    alpha = resilient_alpha(float(np.mean(design.noise_variances)), design.dim)

    @jax.jit
    def fit(means, a):
        theta, centre, u, _ = jax.vmap(lambda m: resilient_means(m, a, num_steps=num_steps))(means)
        err = jnp.mean(jnp.sum((theta - centres) ** 2, axis=-1), axis=-1)
        radius = jnp.sqrt(jnp.sum((theta - centre[:, None, :]) ** 2, axis=-1))
        return err, radius

    by_alpha = [fit(means, alpha * f) for f in ALPHA_FACTORS]
    err_rule, radius_rule = by_alpha[ALPHA_FACTORS.index(1.0)]
    rows["resilient"] = {**_row(err_rule), "alpha": alpha,
                         "radius_median": float(np.median(np.asarray(radius_rule))),
                         "radius_max_median": float(np.median(np.max(np.asarray(radius_rule),
                                                                     axis=1)))}
    curve = [float(np.mean(np.asarray(e))) for e, _ in by_alpha]
    best = int(np.argmin(curve))
    rows["resilient_oracle_alpha"] = {**_row(by_alpha[best][0]),
                                      "alpha": alpha * ALPHA_FACTORS[best],
                                      "alpha_factor": ALPHA_FACTORS[best]}
    for name in ("E_CL_SURE", "E_CL_CV", "resilient", "resilient_oracle_alpha", "E_JS"):
        if name in rows:
            rows[name]["ratio_to_oracle"] = rows[name]["mean"] / oracle
    return {"design": design.name, "tasks": design.tasks, "dim": design.dim,
            "samples": design.samples.tolist(), "sigma": design.sigma,
            "realisations": realisations, "cv_folds": folds if can_cv else None, "rows": rows}


def regression_eps_choice(seeds: int = 10, seed: int = 0) -> dict:
    """Excess test risk (mean, se over seeds) on ``graph_linear``: CL at the oracle and the CV
    ε, resilient CL (rule α), the penalty family at the CV and the oracle μ, separate."""
    from cljax.experiments.compare import problems as bp
    from cljax.methods import _interface as mi

    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 1), seeds)
    problems = jax.vmap(lambda k: bp.graph_linear(k))(keys)
    fractions = jnp.array([0.0, 0.1, 0.25, 0.5, 0.75, 1.0])

    def risk(theta, prob):
        return bp.excess_risk(mi._linear_predict(theta, prob.x_test), prob.f_test)

    @jax.jit
    def one(prob):
        x, y = prob.train.x, prob.train.y
        ones = jnp.ones(x.shape[:2], x.dtype)
        sep = mi._linear_separate(x, y, ones)
        grid = mi._spread(sep) * fractions
        cl = jax.vmap(lambda e: risk(mi._linear_cl_parametric(x, y, ones, e), prob))(grid)
        a, _ = mi.least_squares_terms(x, y, ridge=mi._RIDGE)
        mu_grid = mi._penalty_grid(jnp.mean(jnp.trace(a, axis1=1, axis2=2)) / x.shape[2], x.dtype)
        pen = jax.vmap(lambda m: risk(mi.penalty_least_squares(x, y, m, None, mi._RIDGE)[0],
                                      prob))(mu_grid)
        return {"separate": risk(sep, prob), "cl_grid": cl,
                "cl_cv": risk(mi._linear_cl_parametric_fit(None, x, y), prob),
                "cl_resilient": risk(mi._linear_resilient_fit(None, x, y), prob),
                "penalty_grid": pen, "penalty_cv": risk(mi._linear_penalty_fit(None, x, y), prob)}

    out = jax.lax.map(one, problems)
    out = {k: np.asarray(v) for k, v in out.items()}
    k_cl = int(np.argmin(out["cl_grid"].mean(0)))
    k_pen = int(np.argmin(out["penalty_grid"].mean(0)))
    rows = {"separate": _row(out["separate"]),
            "cl_oracle_eps": {**_row(out["cl_grid"][:, k_cl]),
                              "eps_fraction_of_spread": float(fractions[k_cl])},
            "cl_cv_eps": _row(out["cl_cv"]),
            "cl_resilient": _row(out["cl_resilient"]),
            "penalty_oracle_mu": {**_row(out["penalty_grid"][:, k_pen]), "grid_index": k_pen},
            "penalty_cv_mu": _row(out["penalty_cv"])}
    oracle = rows["cl_oracle_eps"]["mean"]
    for r in rows.values():
        r["ratio_to_oracle_eps"] = r["mean"] / oracle
    return {"benchmark": "graph_linear", "seeds": seeds, "rows": rows}


def markdown(result: dict) -> str:
    """Two tables: the Gaussian designs (MSE and ratio to the oracle ε) and graph_linear."""
    names = [("E_CL_oracle", "oracle ε"), ("E_CL_SURE", "SURE ε"), ("E_CL_CV", "CV ε"),
             ("resilient", "resilient (rule α)"), ("resilient_oracle_alpha", "resilient (oracle α)"),
             ("E_JS", "James–Stein"), ("E_S", "separate"), ("E_C", "consensus")]
    lines = ["| design | " + " | ".join(n for _, n in names) + " |",
             "|---|" + "---|" * len(names)]
    for g in result["gaussian"]:
        cells = []
        for key, _ in names:
            r = g["rows"].get(key)
            cells.append("n/a" if r is None else f"{r['mean']:.3f} ± {r['se']:.3f}")
        lines.append(f"| {g['design']} | " + " | ".join(cells) + " |")
    reg = result.get("regression")
    if reg:
        lines += ["", "| graph_linear | " + " | ".join(reg["rows"]) + " |",
                  "|---|" + "---|" * len(reg["rows"]),
                  "| excess risk | " + " | ".join(f"{r['mean']:.3f} ± {r['se']:.3f}"
                                                 for r in reg["rows"].values()) + " |"]
    return "\n".join(lines)


def main(argv=None) -> dict:
    """``python -m cljax.experiments.compare.eps_choice``: both studies, one JSON object."""
    from cljax.experiments.gaussian.studies import standard_designs

    parser = argparse.ArgumentParser(prog="python -m cljax.experiments.compare.eps_choice")
    parser.add_argument("--realisations", type=at_least_two, default=1000)
    parser.add_argument("--seeds", type=int, default=10, help="graph_linear seeds (0: skip)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--designs", default="", help="comma-separated design names (default all)")
    parser.add_argument("--out", default="", help="write the JSON here too")
    args = parser.parse_args(argv)
    if args.seeds == 1 or args.seeds < 0:
        parser.error(f"argument --seeds: must be 0 (skip) or >= 2, got {args.seeds}")
    designs = standard_designs()
    if args.designs:
        names = [d.name for d in designs]
        wanted = [n.strip() for n in args.designs.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in names]
        if unknown or not wanted:
            parser.error(f"argument --designs: unknown design {', '.join(map(repr, unknown)) or '(empty)'}; "
                         f"choose from {', '.join(names)}")
        designs = [d for d in designs if d.name in wanted]
    if args.out:
        parent = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(parent):
            parser.error(f"argument --out: folder {parent} does not exist")
    jax.config.update("jax_enable_x64", True)
    start = time.perf_counter()
    key = jax.random.PRNGKey(args.seed)
    gaussian = []
    for i, design in enumerate(designs):
        print(f"{design.name} ...", file=sys.stderr, flush=True)
        gaussian.append(gaussian_eps_choice(jax.random.fold_in(key, i), design, args.realisations))
    result = {"command": "eps_choice", "seed": args.seed, "gaussian": gaussian}
    if args.seeds:
        print("graph_linear ...", file=sys.stderr, flush=True)
        result["regression"] = regression_eps_choice(args.seeds, args.seed)
    result["markdown"] = markdown(result)
    result["seconds"] = time.perf_counter() - start
    text = dumps_strict(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
