"""``cljax covid``: SIR cross-learning on COVID-19 data (paper Section VI-A, Figs 4–8).

Fits separate, consensus (the paper's count-weighted centralised fit and the
normalised ε = 0 limit) and cross-learning SIR models to the target's first N
days plus the 14 source countries, and prints per estimator β, γ, the peak error
and the lag.  ``--protocol authors`` cuts the windows as the authors' scripts do.
``--eps-sweep K`` adds Fig 7 (K values of ε in [0, eps-max], one jitted program
vmapped over ε), ``--n-sweep`` adds Fig 8 (N = n-min..n-max), ``--out DIR``
writes Figs 4–8 as PNG and CSV.
"""

from __future__ import annotations

import argparse
import sys
import time

from cljax.experiments._common import (UsageError, positive_float, positive_int,
                                       prepare_out_dir, radius)

LABELS = {"separate": "separate", "consensus": "consensus (paper)",
          "consensus_normalised": "consensus (eps=0)", "cross_learning": "cross-learning"}
FIGURE_FILES = tuple(f"{stem}.{ext}" for stem in (
    "fig4_data", "fig5_prediction", "fig6_parameters", "fig7_eps_sweep", "fig8_n_sweep")
    for ext in ("png", "csv"))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("covid", help="COVID-19 SIR cross-learning (paper Figs 4-8)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default=None,
                   help="ISO code of the target country (default: the windows table's row "
                        "with role target, ARG in the shipped table)")
    p.add_argument("--n-train", type=positive_int, default=10,
                   help="training days of the target, N (10)")
    p.add_argument("--eps", type=radius, default=0.1,
                   help="cross-learning radius (0.1)")
    p.add_argument("--out", default=None, help="folder for the figures (PNG + CSV)")
    p.add_argument("--eps-sweep", type=positive_int, default=0, metavar="K",
                   help="Fig 7: K values of eps in [0, --eps-max] (the paper: 101)")
    p.add_argument("--eps-max", type=positive_float, default=1.0)
    p.add_argument("--n-sweep", action="store_true", help="Fig 8: N = --n-min..--n-max")
    p.add_argument("--n-min", type=positive_int, default=2)
    p.add_argument("--n-max", type=positive_int, default=28)
    p.add_argument("--iterations", type=positive_int, default=200, help="ADMM iterations")
    p.add_argument("--prox-steps", type=positive_int, default=5,
                   help="Levenberg-Marquardt steps per ADMM x-step")
    p.add_argument("--authors-dual", action="store_true",
                   help="do not rescale the dual when the penalty changes (authors' code)")
    p.add_argument("--cases", default=None,
                   help="an OWID owid-covid-data.csv (default: the shipped JHU data)")
    p.add_argument("--windows", default=None,
                   help="a windows CSV iso_code,start_date,window_days[,role]")
    p.add_argument("--protocol", choices=("cljax", "authors"), default="cljax",
                   help="windows: 'cljax' keeps the last day above 0.8 x peak and the "
                        "target's first N days; 'authors' drops that day, as the authors' "
                        "scripts do, for every window and for the target's N days "
                        "(N - 1 days while its wave rises)")
    p.add_argument("--allow-negative-cases", action="store_true",
                   help="accept negative new_cases (data corrections) inside a window")
    p.add_argument("--x64", action="store_true", help="compute in float64")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_covid, report=print_covid)


def _log(message):
    print(message, file=sys.stderr, flush=True)


def run_covid(args) -> dict:
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    from cljax.experiments.covid import experiment as ce
    start = time.perf_counter()
    try:
        problem = ce.default_problem(args.target, args.n_train, args.cases, args.windows,
                                     args.protocol, args.allow_negative_cases)
        ce.check_loss_scale(problem, problem.train_days())
        n_grid = _n_grid(args, problem, ce) if args.n_sweep else None
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    if args.out:  # before any fit: an unusable folder must not cost the work
        prepare_out_dir(args.out, files=FIGURE_FILES)
    fit = ce.SIRFit(admm_iterations=args.iterations, prox_steps=args.prox_steps,
                    rescale_dual=not args.authors_dual)
    _log(f"[covid] {len(problem.windows)} countries, target {problem.target.iso_code}, "
         f"N = {problem.n_train}: fitting the four estimators (jit compile first) ...")
    out = ce.run_estimators(problem, args.eps, fit)
    out["seconds_estimators"] = time.perf_counter() - start
    if args.eps_sweep:
        import numpy as np

        grid = np.linspace(0.0, args.eps_max, args.eps_sweep)
        _log(f"[covid] eps sweep: {len(grid)} values x {args.iterations} ADMM iterations, "
             "one jitted program (compiling ...)")
        t0 = time.perf_counter()

        def progress(k):
            _log(f"[covid]   eps sweep: ADMM iteration {int(k)}/{args.iterations} "
                 f"({time.perf_counter() - t0:.1f} s)")

        out["eps_sweep"] = ce.eps_sweep(problem, grid, fit, progress=progress)
        out["eps_sweep"]["seconds"] = time.perf_counter() - t0
    if args.n_sweep:
        _log(f"[covid] N sweep: N = {n_grid[0]}..{n_grid[-1]} ({len(n_grid)} values), one "
             "jitted program vmapped over N ...")
        t0 = time.perf_counter()
        out["n_sweep"] = ce.n_sweep(problem, n_grid, args.eps, fit)
        out["n_sweep"]["seconds"] = time.perf_counter() - t0
        _log(f"[covid] N sweep done in {out['n_sweep']['seconds']:.1f} s")
    if args.out:
        from cljax.experiments.covid import figures as cf
        _log(f"[covid] writing figures to {args.out}")
        files = list(cf.fig4_data(problem, args.out))
        files += cf.fig5_prediction(problem, out, args.out, fit.solver)
        files += cf.fig6_parameters(problem, out, args.out)
        if "eps_sweep" in out:
            files += cf.fig7_eps_sweep(out["eps_sweep"], out["estimators"], args.out)
        if "n_sweep" in out:
            files += cf.fig8_n_sweep(out["n_sweep"], args.out)
        out["files"] = files
    for result in (out, out.get("n_sweep", {})):
        if "eps" in result and result["eps"] == float("inf"):  # strict JSON: no Infinity
            result["eps"], result["eps_text"] = None, "inf"
    out["command"] = "covid"
    out["seconds"] = time.perf_counter() - start
    return out


def _n_grid(args, problem, ce):
    """The N sweep's grid, checked before any work."""
    n_max = min(args.n_max, problem.target.days)
    if args.n_min > n_max:
        raise ValueError(f"--n-min {args.n_min} exceeds --n-max {n_max}")
    n_grid = list(range(max(args.n_min, 2), n_max + 1))
    for n in n_grid:
        days = problem.train_days(n)
        if days < 1:
            raise ValueError(f"--n-min {args.n_min}: the authors' cut of the target's first "
                             f"{n} days keeps no day")
        ce.check_loss_scale(problem, days)
    return n_grid


def _param(value) -> str:
    """β or γ in 9 characters; a small non-zero value in e-notation, so that a γ of 1e-4
    (which moves a γ ≈ 0 curve's peak by weeks) does not print as 0.0000."""
    return f"{value:9.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:9.2e}"


def print_covid(out: dict) -> None:
    truth = out["truth"]
    days = out.get("train_days", out["n_train"])
    fitted = f" ({days} fitted)" if days != out["n_train"] else ""
    eps = out.get("eps_text") or format(out["eps"], "g")
    print(f"Target {out['target']}, N = {out['n_train']} training days{fitted}, "
          f"eps = {eps}, protocol {out.get('protocol', 'cljax')}; "
          f"true peak {truth['peak']:,.0f} on day {truth['peak_day']}")
    print(f"  {'estimator':<19}{'beta':>9}{'gamma':>9}{'peak error':>13}{'lag':>7}")
    for name, e in out["estimators"].items():
        print(f"  {LABELS.get(name, name):<19}{_param(e['beta'])}{_param(e['gamma'])}"
              f"{e['peak_error_percent']:12.2f}%{e['lag_days']:5d} d")
    print("  consensus (paper): the authors' count-weighted fit, sum of (I_model - I_data)^2 "
          "over all countries;\n  consensus (eps=0): the normalised cross-learning objective "
          "at eps = 0")
    if "eps_sweep" in out:
        s = out["eps_sweep"]
        print(f"\neps sweep ({len(s['eps'])} values, {s['seconds']:.1f} s):")
        step = max(1, len(s["eps"]) // 10)
        for i in range(0, len(s["eps"]), step):
            print(f"  eps {s['eps'][i]:5.2f}: peak error {s['peak_error_percent'][i]:9.2f}%"
                  f"  lag {s['lag_days'][i]:3d} d")
        for name, e in s.get("baselines", {}).items():
            print(f"  {LABELS.get(name, name)}: peak error {e['peak_error_percent']:.2f}%"
                  f"  lag {e['lag_days']} d")
    if "n_sweep" in out:
        s = out["n_sweep"]
        print(f"\nN sweep ({s['seconds']:.1f} s), peak error %:")
        print("  N    " + "".join(f"{LABELS.get(k, k):>20}" for k in s["estimators"]))
        for i, n in enumerate(s["n"]):
            print(f"  {n:<4} " + "".join(f"{e['peak_error_percent'][i]:20.2f}"
                                         for e in s["estimators"].values()))
    if out.get("files"):
        print("\nfiles: " + ", ".join(out["files"]))
    print(f"({out['seconds']:.1f} s)")
