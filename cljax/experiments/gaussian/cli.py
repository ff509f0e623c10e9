"""``cljax gaussian``: the Gaussian-mean studies, written as CSV, PNG and Markdown.

Writes into ``--out``:

* ``fig3.csv``, ``fig3.png``: Example 2's Monte Carlo E_CL(ε) for each σ (paper
  Fig 3), with the separate and consensus levels (Monte Carlo and closed form);
* ``two_task.csv``, ``eusipco_fig1.png``: EUSIPCO eq. 8 with Monte Carlo dots;
* ``selection.csv``, ``selection.md``: separate, consensus, James–Stein and
  cross-learning at the oracle, SURE- and CV-chosen ε, per design, with Theorem 1;
* ``summary.json``: what ``--json`` prints.

With ``--noise LAW[,LAW...]`` (Gaussian, Student-t, Laplace, contaminated Gaussian, all of
variance σ²; open question 3) it runs instead the noise-law study: Theorem 1's differences
inf_ε E_CL − E_C and inf_ε E_CL − E_S with 95% intervals and a verdict, per law and table
design, written as ``noise_laws.csv``, ``noise_laws.md``, ``noise_laws.png`` and
``summary.json``.  SURE assumes
Gaussian noise, so the noise-law study leaves it (and the CV table) out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from cljax.experiments._common import (UsageError, check_memory, check_representable,
                                       check_resolution, dumps_strict, mean_se,
                                       non_negative_float, positive_float, positive_int,
                                       prepare_out_dir, pyplot, seed, working_dtype, write_csv)


def _eprint(args, text):
    if not args.quiet:
        print(f"[cljax gaussian] {text}", file=sys.stderr, flush=True)


def _noise(value):
    from cljax.experiments.gaussian.noise import parse_noise_list

    try:
        return parse_noise_list(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _folds(value):
    k = int(value)
    if k != 0 and k < 2:
        raise argparse.ArgumentTypeError(f"must be 0 (no CV) or an integer >= 2, got {value}")
    return k


DEFAULT_FOLDS = 5
TABLE_BATCH = 200  # realisations per lax.map batch of the selection table
TWO_TASK_GRID = 41


def add_parser(subparsers) -> None:
    from cljax.experiments.gaussian.studies import standard_designs

    names = [d.name for d in standard_designs()]
    p = subparsers.add_parser(
        "gaussian", help="Gaussian-mean studies: Fig 3, EUSIPCO eq. 8, Theorem 1, ε selection",
        description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="gaussian_out", help="output folder (created)")
    p.add_argument("--realisations", type=positive_int, default=5000,
                   help="Monte Carlo realisations for Fig 3 / Example 2")
    p.add_argument("--mu", type=positive_float, default=2.0, help="Example 2's μ")
    p.add_argument("--sigmas", type=positive_float, nargs="+", default=[1.0, 2.0],
                   help="Example 2 noise levels σ (Fig 3)")
    p.add_argument("--eps-max", type=positive_float, default=10.0, help="Fig 3 grid: 0..eps-max")
    p.add_argument("--num-eps", type=positive_int, default=201, help="Fig 3 grid points")
    p.add_argument("--table-realisations", type=positive_int, default=400,
                   help="realisations per design of the selection table")
    p.add_argument("--table-num-eps", type=positive_int, default=61,
                   help="grid points of the table's ε grid (plus ε = ∞)")
    p.add_argument("--designs", nargs="*", default=names, choices=names, metavar="NAME",
                   help=f"table designs (default all: {', '.join(names)})")
    p.add_argument("--tasks", type=positive_int, help="add a custom design with T tasks")
    p.add_argument("--dim", type=positive_int, default=2, help="custom design: d")
    p.add_argument("--samples", type=positive_int, default=4, help="custom design: N_t")
    p.add_argument("--sigma", type=positive_float, default=2.0, help="custom design: σ")
    p.add_argument("--folds", type=_folds, default=None,
                   help=f"K of K-fold CV (0: no CV; default {DEFAULT_FOLDS}, at most N_t of "
                   "each design); with --tasks, at most --samples")
    p.add_argument("--two-task-draws", type=positive_int, default=100_000,
                   help="Monte Carlo draws per point of EUSIPCO Fig 1")
    p.add_argument("--two-task-eps0", type=non_negative_float, nargs="+", default=[0.5, 1.0, 2.0, 4.0],
                   help="true differences ε0 of the two scalar tasks")
    p.add_argument("--two-task-sigma-m", type=positive_float, default=1.0, help="σ_M")
    p.add_argument("--noise", type=_noise, default=None, metavar="LAW[,LAW...]",
                   help="run the noise-law study (Theorem 1 per law and table design) instead: "
                   "gaussian, student-t:NU (NU > 2), laplace, contaminated[:P] (0 < P < 1, "
                   "default 0.1), comma-separated; all scaled to variance sigma^2")
    p.add_argument("--seed", type=seed, default=0, help="PRNG seed, 0 <= seed < 2**32")
    p.add_argument("--no-plots", action="store_true", help="write CSV/Markdown only")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(run=run_gaussian, report=print_gaussian)


def _example2(args, key, out_dir):
    import jax

    from cljax.experiments.gaussian.studies import example2_design, monte_carlo, theorem1

    grid = np.linspace(0.0, args.eps_max, args.num_eps)
    results, rows = {}, []
    for i, sigma in enumerate(args.sigmas):
        _eprint(args, f"Example 2, sigma={sigma:g}: {args.realisations} realisations x "
                      f"{args.num_eps} eps")
        design = example2_design(sigma, args.mu)
        err = monte_carlo(jax.random.fold_in(key, i), design, grid, args.realisations)
        err = {k: np.asarray(v, float) for k, v in err.items()}
        e_cl, e_cl_se = mean_se(err["E_CL"])
        e_s, e_s_se = mean_se(err["E_S"])
        e_c, e_c_se = mean_se(err["E_C"])
        best = int(np.argmin(e_cl))
        results[f"{sigma:g}"] = {
            "E_S": float(e_s), "E_S_se": float(e_s_se), "E_S_closed_form": 2 * sigma**2,
            "E_C": float(e_c), "E_C_se": float(e_c_se),
            "E_C_closed_form": args.mu**2 + sigma**2 / 2,
            "best_eps": float(grid[best]), "E_CL_best": float(e_cl[best]),
            "E_CL_best_se": float(e_cl_se[best]), "theorem1": theorem1(err)}
        rows += [[sigma, g, v, s, float(e_s), 2 * sigma**2, float(e_c), args.mu**2 + sigma**2 / 2]
                 for g, v, s in zip(grid, e_cl, e_cl_se)]
    write_csv(os.path.join(out_dir, "fig3.csv"),
               ["sigma", "eps", "E_CL", "E_CL_se", "E_S_mc", "E_S_closed_form", "E_C_mc",
                "E_C_closed_form"], rows)
    if not args.no_plots:
        _plot_fig3(args, grid, rows, os.path.join(out_dir, "fig3.png"))
    return results


def _two_task(args, key, out_dir):
    import jax
    import jax.numpy as jnp

    from cljax.projection._centre_newton import project_centre_newton
    from cljax.estimators._two_task import two_task_draws, two_task_mse

    sigma_m = args.two_task_sigma_m
    grid = np.linspace(0.0, 4.0 * max(max(args.two_task_eps0), sigma_m), TWO_TASK_GRID)
    _eprint(args, f"two scalar tasks: {len(args.two_task_eps0)} eps0 x {grid.size} eps x "
                  f"{args.two_task_draws} draws")

    @jax.jit
    def mc(k, eps0):
        draws = two_task_draws(k, eps0, sigma_m, args.two_task_draws)[:, :, None]

        def at(eps):  # EUSIPCO's pair bound ε is cljax's radius ε/2
            est = jax.vmap(lambda p: project_centre_newton(p, eps / 2).task_params[0, 0])(draws)
            sq = (est - eps0 / 2) ** 2
            return jnp.mean(sq), jnp.std(sq) / np.sqrt(args.two_task_draws)

        return jax.lax.map(at, jnp.asarray(grid))

    rows, worst = [], 0.0
    for i, eps0 in enumerate(args.two_task_eps0):
        m, se = (np.asarray(x) for x in mc(jax.random.fold_in(key, 100 + i), eps0))
        closed = np.asarray(two_task_mse(grid, eps0, sigma_m))
        worst = max(worst, float(np.max(np.abs(m - closed) / se)))
        rows += [[eps0, sigma_m, g, c, a, b] for g, c, a, b in zip(grid, closed, m, se)]
    write_csv(os.path.join(out_dir, "two_task.csv"),
               ["eps0", "sigma_m", "eps", "mse_closed_form", "mse_mc", "mse_mc_se"], rows)
    if not args.no_plots:
        _plot_two_task(args, rows, os.path.join(out_dir, "eusipco_fig1.png"))
    return {"sigma_m": sigma_m, "eps0": list(args.two_task_eps0),
            "draws": args.two_task_draws, "max_abs_z_mc_vs_closed_form": worst}


def _table(args, key, out_dir):
    import jax

    from cljax.experiments.gaussian.studies import (default_eps_grid, monte_carlo,
                                                    selection_summary, theorem1)

    designs = _designs(args)
    table = {}
    for i, design in enumerate(designs):
        grid = default_eps_grid(design, args.table_num_eps)
        folds = _cv_folds(args, design)
        _eprint(args, f"table {i + 1}/{len(designs)}: {design.name} (T={design.tasks}, "
                      f"d={design.dim}), {args.table_realisations} realisations, "
                      f"{grid.size} eps, CV folds={folds or 'n/a'}")
        err = monte_carlo(jax.random.fold_in(key, 1000 + i), design, grid,
                          args.table_realisations, selection=True, folds=folds,
                          batch_size=TABLE_BATCH)
        err = {k: np.asarray(v, float) for k, v in err.items()}
        table[design.name] = {"tasks": design.tasks, "dim": design.dim,
                              "samples": design.samples.tolist(), "sigma": design.sigma,
                              "cv_folds": folds,
                              "estimators": selection_summary(err, grid),
                              "theorem1": theorem1(err)}
    _write_table(table, out_dir)
    return table


SURE_NOTE = ("not reported under --noise: SURE assumes Gaussian noise (Stein's lemma) and is "
             "biased under the other laws; the noise-law study reports Theorem 1 only")


def _noise_laws(args, key, out_dir):
    """Theorem 1 per noise law and table design (the table's keys, grid and realisations)."""
    import jax

    from cljax.experiments.gaussian.studies import default_eps_grid, monte_carlo, theorem1, verdict

    designs = _designs(args)
    laws = {}
    for law in args.noise:
        rows = {}
        for i, design in enumerate(designs):
            grid = default_eps_grid(design, args.table_num_eps)
            _eprint(args, f"noise {law.spec}, design {i + 1}/{len(designs)}: {design.name} "
                          f"(T={design.tasks}, d={design.dim}), {args.table_realisations} "
                          f"realisations, {grid.size} eps")
            err = monte_carlo(jax.random.fold_in(key, 1000 + i), design, grid,
                              args.table_realisations, batch_size=TABLE_BATCH, noise=law)
            err = {k: np.asarray(v, float) for k, v in err.items() if k != "E_JS"}
            t1 = theorem1(err)
            row = {"tasks": design.tasks, "dim": design.dim, "samples": design.samples.tolist(),
                   "sigma": design.sigma}
            for name in ("E_S", "E_C"):
                m, se = mean_se(err[name])
                row[name] = {"mean": float(m), "se": float(se)}
            row["theorem1"] = t1
            row["verdict"] = {k: verdict(t1[k]["ci95"]) for k in ("minus_E_C", "minus_E_S")}
            rows[design.name] = row
        laws[law.spec] = {"excess_kurtosis": law.excess_kurtosis, "designs": rows}
    _write_noise_table(args, laws, out_dir)
    if not args.no_plots:
        plot_noise_laws(laws, os.path.join(out_dir, "noise_laws.png"))
    return laws


def plot_noise_laws(laws: dict, path: str) -> None:
    """Theorem 1's differences per design and law, as a fraction of the law's mean E_C / E_S.

    ``laws`` is the ``"noise_laws"`` entry of the summary; one panel per difference, error
    bars the 95% intervals (divided by the mean baseline, whose own error is ignored).
    """
    plt = pyplot()

    specs = list(laws)
    designs = list(laws[specs[0]]["designs"]) if specs else []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=False)
    width = 0.8 / max(len(specs), 1)
    for ax, (key, base) in zip(axes, (("minus_E_C", "E_C"), ("minus_E_S", "E_S"))):
        for j, spec in enumerate(specs):
            x, y, lo, hi = [], [], [], []
            for i, name in enumerate(designs):
                r = laws[spec]["designs"][name]
                t, b = r["theorem1"][key], r[base]["mean"]
                x.append(i - 0.4 + (j + 0.5) * width)
                y.append(100 * t["mean"] / b)
                lo.append(100 * (t["mean"] - t["ci95"][0]) / b)
                hi.append(100 * (t["ci95"][1] - t["mean"]) / b)
            ax.errorbar(x, y, yerr=[lo, hi], fmt="o", ms=4, capsize=2, label=spec)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xticks(range(len(designs)))
        ax.set_xticklabels(designs, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel(f"(inf_ε E_CL − {base}) / {base}  [%]")
        ax.set_title(f"Theorem 1: inf_ε E_CL − {base}, 95% intervals")
    axes[0].legend(fontsize=8, title="noise (variance σ²)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_noise_table(args, laws, out_dir):
    header = ["noise", "design", "T", "d", "sigma", "E_S", "E_S_se", "E_C", "E_C_se",
              "E_inf_CL", "minus_E_C", "minus_E_C_ci_low", "minus_E_C_ci_high",
              "minus_E_C_verdict", "minus_E_S", "minus_E_S_ci_low", "minus_E_S_ci_high",
              "minus_E_S_verdict"]
    rows = []
    md = [f"Theorem 1 under non-Gaussian noise of variance σ² ({args.table_realisations} "
          f"realisations per law and design, {args.table_num_eps}-point ε grid + ε = ∞, seed "
          f"{args.seed}). inf_ε E_CL is taken per realisation over the grid, ε = 0 and ε = ∞; "
          "mean [95% interval] = mean ± 1.96 sd/√R of the paired per-realisation differences. "
          "Verdict: holds (interval below 0), breaks (above 0), inconclusive (contains 0). "
          "SURE is not reported: it assumes Gaussian noise.", "",
          "| noise | design | T | d | E_S | E_C | inf E_CL − E_C [95% CI] | verdict "
          "| inf E_CL − E_S [95% CI] | verdict |", "|" + "---|" * 10]
    for spec, law in laws.items():
        for name, r in law["designs"].items():
            t1 = r["theorem1"]
            row = [spec, name, r["tasks"], r["dim"], r["sigma"], r["E_S"]["mean"],
                   r["E_S"]["se"], r["E_C"]["mean"], r["E_C"]["se"], t1["E_inf_CL"]]
            cells = []
            for k in ("minus_E_C", "minus_E_S"):
                lo, hi = t1[k]["ci95"]
                row += [t1[k]["mean"], lo, hi, r["verdict"][k]]
                cells += [f"{t1[k]['mean']:.4f} [{lo:.4f}, {hi:.4f}]", r["verdict"][k]]
            rows.append(row)
            md.append(f"| {spec} | {name} | {r['tasks']} | {r['dim']} | "
                      f"{r['E_S']['mean']:.3f} ± {r['E_S']['se']:.3f} | "
                      f"{r['E_C']['mean']:.3f} ± {r['E_C']['se']:.3f} | " + " | ".join(cells) + " |")
    write_csv(os.path.join(out_dir, "noise_laws.csv"), header, rows)
    with open(os.path.join(out_dir, "noise_laws.md"), "w") as f:
        f.write("\n".join(md) + "\n")


_COLUMNS = [("E_S", "separate"), ("E_C", "consensus"), ("E_JS", "James-Stein+"),
            ("E_CL_oracle", "CL oracle eps"), ("E_CL_SURE", "CL SURE eps"), ("E_CL_CV", "CL CV eps")]


def _write_table(table, out_dir):
    header = ["design", "T", "d", "sigma"]
    for key, _ in _COLUMNS:
        header += [key, f"{key}_se"]
    header += ["SURE_over_oracle", "CV_over_oracle", "oracle_eps",
               "thm1_minus_E_C", "thm1_minus_E_C_ci_low", "thm1_minus_E_C_ci_high",
               "thm1_minus_E_S", "thm1_minus_E_S_ci_low", "thm1_minus_E_S_ci_high"]
    rows = []
    md = ["| design | T | d | " + " | ".join(label for _, label in _COLUMNS)
          + " | SURE/oracle | CV/oracle | Thm 1: inf−E_C [95% CI] | Thm 1: inf−E_S [95% CI] |",
          "|" + "---|" * (3 + len(_COLUMNS) + 4)]
    for name, r in table.items():
        est = r["estimators"]
        row = [name, r["tasks"], r["dim"], r["sigma"]]
        cells = []
        for key, _ in _COLUMNS:
            if key in est:
                row += [est[key]["mean"], est[key]["se"]]
                cells.append(f"{est[key]['mean']:.3f} ± {est[key]['se']:.3f}")
            else:
                row += ["", ""]
                cells.append("n/a")
        ratios = [est[k]["ratio_to_oracle"] if k in est else "" for k in ("E_CL_SURE", "E_CL_CV")]
        t1 = r["theorem1"]
        row += ratios + [est["E_CL_oracle"]["eps"]]
        for k in ("minus_E_C", "minus_E_S"):
            row += [t1[k]["mean"], *t1[k]["ci95"]]
        rows.append(row)
        fmt = lambda x: f"{x:.3f}" if x != "" else "n/a"  # noqa: E731
        thm = [f"{t1[k]['mean']:.3f} [{t1[k]['ci95'][0]:.3f}, {t1[k]['ci95'][1]:.3f}]"
               for k in ("minus_E_C", "minus_E_S")]
        md.append(f"| {name} | {r['tasks']} | {r['dim']} | " + " | ".join(cells)
                  + f" | {fmt(ratios[0])} | {fmt(ratios[1])} | {thm[0]} | {thm[1]} |")
    write_csv(os.path.join(out_dir, "selection.csv"), header, rows)
    with open(os.path.join(out_dir, "selection.md"), "w") as f:
        f.write("Monte Carlo MSE (1/T) Σ_t ‖θ̂_t − θ*_t‖² (mean ± standard error).\n\n")
        f.write("\n".join(md) + "\n")


def _plot_fig3(args, grid, rows, path):
    plt = pyplot()

    data = np.asarray(rows, float)
    fig, axes = plt.subplots(1, len(args.sigmas), figsize=(5 * len(args.sigmas), 4), squeeze=False)
    for ax, sigma in zip(axes[0], args.sigmas):
        d = data[data[:, 0] == sigma]
        ax.plot(d[:, 1], d[:, 2], label="cross-learning E_CL(ε)")
        ax.fill_between(d[:, 1], d[:, 2] - 2 * d[:, 3], d[:, 2] + 2 * d[:, 3], alpha=0.3)
        ax.axhline(d[0, 4], color="C1", ls="--", label=f"separate E_S = {d[0, 4]:.3f}")
        ax.axhline(d[0, 6], color="C2", ls="--", label=f"consensus E_C = {d[0, 6]:.3f}")
        ax.axhline(d[0, 5], color="C1", ls=":", lw=0.8, label="closed forms 2σ², μ²+σ²/2")
        ax.axhline(d[0, 7], color="C2", ls=":", lw=0.8)
        ax.set_xlabel("ε")
        ax.set_ylabel("MSE")
        ax.set_title(f"Example 2, σ = {sigma:g}, μ = {args.mu:g}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_two_task(args, rows, path):
    plt = pyplot()

    data = np.asarray(rows, float)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, eps0 in enumerate(args.two_task_eps0):
        d = data[data[:, 0] == eps0]
        ax.plot(d[:, 2], d[:, 3], color=f"C{i}", label=f"eq. 8, ε0 = {eps0:g}")
        ax.errorbar(d[:, 2], d[:, 4], yerr=2 * d[:, 5], fmt="o", ms=3, color=f"C{i}")
    ax.set_xlabel("ε (bound on |μ̂_x − μ̂_y|)")
    ax.set_ylabel("mse(ε)")
    ax.set_title(f"Two scalar tasks, σ_M = {args.two_task_sigma_m:g}: closed form and "
                 f"{args.two_task_draws} draws")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _designs(args):
    from cljax.experiments.gaussian.studies import random_design, standard_designs

    designs = [d for d in standard_designs() if d.name in args.designs]
    if args.tasks is not None:
        designs.append(random_design(f"custom-T{args.tasks}-d{args.dim}-N{args.samples}",
                                     args.tasks, args.dim, args.samples, args.sigma))
    return designs


def _cv_folds(args, design) -> int:
    """K used for ``design``: --folds (default 5) capped at its largest N_t; 0 if some N_t < 2."""
    k = DEFAULT_FOLDS if args.folds is None else args.folds
    if not k or design.samples.min() < 2:
        return 0
    return int(min(k, design.samples.max()))


def _output_files(args):
    if args.noise is not None:
        return sorted(["noise_laws.csv", "noise_laws.md", "summary.json"]
                      + ([] if args.no_plots else ["noise_laws.png"]))
    files = ["fig3.csv", "two_task.csv", "selection.csv", "selection.md", "summary.json"]
    if not args.no_plots:
        files += ["fig3.png", "eusipco_fig1.png"]
    return sorted(files)


def memory_estimate(args, itemsize: int) -> list[tuple[float, str]]:
    """(bytes, options) of each phase's peak (estimates; the phases run one after another).

    Example 2: the (R, E) curves on the device (:func:`demo.study_memory`) and their float64
    copies on the host (mean and s.e.: four).  Table: three (R, E) curves (E_CL, SURE, CV) on
    the device and twice on the host, and per batch of realisations the (T, N, d) samples
    once per fold and a few more times.  Two tasks: a few float arrays per draw and ε.
    """
    from cljax.experiments.gaussian.demo import study_memory

    if args.noise is not None:  # per design: E_CL (R, E) on the device, twice on the host
        table = 0.0
        for design in _designs(args):
            r, e = args.table_realisations, args.table_num_eps + 1
            cells = float(design.tasks) * float(design.samples.max()) * design.dim
            table = max(table, r * e * (itemsize + 2 * 8)
                        + min(TABLE_BATCH, r) * cells * itemsize * 4 * 2)
        return [(table, "--table-realisations x --table-num-eps (x --tasks x --samples x "
                        "--dim)")]
    r, e = args.realisations, args.num_eps
    phases = [(study_memory(r, e, itemsize) + 4 * 8.0 * r * e, "--realisations x --num-eps")]
    table = 0.0
    for design in _designs(args):
        r, e = args.table_realisations, args.table_num_eps + 1
        cells = float(design.tasks) * float(design.samples.max()) * design.dim
        batch = min(TABLE_BATCH, r)
        table = max(table, 3.0 * r * e * (itemsize + 2 * 8)
                    + batch * cells * itemsize * (_cv_folds(args, design) + 4) * 2)
    phases.append((table, "--table-realisations x --table-num-eps (x --tasks x --samples x "
                          "--dim)"))
    phases.append((8.0 * args.two_task_draws * itemsize * 4, "--two-task-draws"))
    return phases


def check_gaussian_args(args) -> None:
    """Every refusal before any work: CV folds, memory, float range, then the output folder
    (created last, so that a refused run leaves nothing behind)."""
    if args.tasks is not None and args.folds and args.folds > args.samples:
        raise UsageError(f"--folds {args.folds}: more folds than --samples {args.samples} per "
                         f"task of the custom design (use --folds <= {args.samples}, or 0)"
                         if args.samples >= 2 else
                         f"--folds {args.folds}: K-fold CV needs --samples >= 2 per task, "
                         f"got --samples {args.samples} (use --folds 0)")
    dtype = working_dtype()
    for estimate, options in memory_estimate(args, dtype.itemsize):
        check_memory(estimate, options)
    check_representable("--eps-max", args.eps_max, dtype)
    for sigma in args.sigmas:
        check_resolution("--mu", args.mu, sigma, "--sigmas", dtype)
    if args.tasks is not None:  # centres ~ N(0, I): |θ*| below 10 with overwhelming odds
        check_resolution("centres", 10.0, args.sigma / np.sqrt(args.samples),
                         "--sigma / sqrt(--samples)", dtype)
    for eps0 in args.two_task_eps0:
        check_resolution("--two-task-eps0", eps0, args.two_task_sigma_m,
                         "--two-task-sigma-m", dtype)
    prepare_out_dir(args.out, "--out", _output_files(args))


def run_gaussian(args) -> dict:
    check_gaussian_args(args)
    import jax

    out_dir = args.out
    key = jax.random.PRNGKey(args.seed)
    start = time.perf_counter()
    if args.noise is not None:
        out = {"command": "gaussian", "out": os.path.abspath(out_dir), "seed": args.seed,
               "noise": [law.spec for law in args.noise],
               "realisations": args.table_realisations, "table_num_eps": args.table_num_eps,
               "sure": SURE_NOTE}
        out["noise_laws"] = _noise_laws(args, key, out_dir)
        return _finish(args, out, start)
    out = {"command": "gaussian", "out": os.path.abspath(out_dir), "seed": args.seed,
           "mu": args.mu, "realisations": args.realisations,
           "eps_grid": {"max": args.eps_max, "num": args.num_eps}}
    out["example2"] = _example2(args, key, out_dir)
    out["two_task"] = _two_task(args, key, out_dir)
    out["selection"] = _table(args, key, out_dir) if args.designs or args.tasks else {}
    return _finish(args, out, start)


def _finish(args, out, start) -> dict:
    out_dir = args.out
    out["seconds"] = time.perf_counter() - start
    out["files"] = _output_files(args)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        f.write(dumps_strict(out, indent=1))  # strict JSON: NaN -> null, see "non_finite"
    _eprint(args, f"done in {out['seconds']:.1f} s; wrote {', '.join(out['files'])} to {out_dir}")
    return out


def print_gaussian(out: dict) -> None:
    print(f"Gaussian-mean studies -> {out['out']} ({out['seconds']:.1f} s)")
    if "noise_laws" in out:
        print(f"\nTheorem 1 per noise law ({out['realisations']} realisations; "
              "inf E_CL - E_C and inf E_CL - E_S, 95% CI, verdict). SURE: not reported "
              "(it assumes Gaussian noise).")
        for spec, law in out["noise_laws"].items():
            print(f"\n  noise {spec} (excess kurtosis {law['excess_kurtosis']:.3g})")
            for name, r in law["designs"].items():
                parts = []
                for k in ("minus_E_C", "minus_E_S"):
                    t = r["theorem1"][k]
                    parts.append(f"{k.replace('minus_', '- ')} = {t['mean']:.4f} "
                                 f"[{t['ci95'][0]:.4f}, {t['ci95'][1]:.4f}] {r['verdict'][k]}")
                print(f"    {name}: " + "; ".join(parts))
        return
    for sigma, r in out["example2"].items():
        t1 = r["theorem1"]
        print(f"\nExample 2, sigma = {sigma}, mu = {out['mu']}, {out['realisations']} realisations")
        print(f"  E_S = {r['E_S']:.4f} ± {r['E_S_se']:.4f} (closed form {r['E_S_closed_form']:.4f})")
        print(f"  E_C = {r['E_C']:.4f} ± {r['E_C_se']:.4f} (closed form {r['E_C_closed_form']:.4f})")
        print(f"  min_eps E_CL = {r['E_CL_best']:.4f} ± {r['E_CL_best_se']:.4f} at eps = "
              f"{r['best_eps']:.2f}")
        for k in ("minus_E_C", "minus_E_S"):
            lo, hi = t1[k]["ci95"]
            print(f"  Theorem 1: E[inf E_CL] {k.replace('minus_', '- ')} = {t1[k]['mean']:.4f} "
                  f"(95% CI [{lo:.4f}, {hi:.4f}])")
    tt = out["two_task"]
    print(f"\nTwo scalar tasks: eq. 8 vs {tt['draws']} draws, max |z| = "
          f"{tt['max_abs_z_mc_vs_closed_form']:.2f}")
    if out["selection"]:
        print("\nSelection table (MSE; ratio to the oracle):")
        for name, r in out["selection"].items():
            e = r["estimators"]
            parts = [f"{k}={e[k]['mean']:.3f}" for k, _ in _COLUMNS if k in e]
            ratio = [f"{k[5:]}/oracle={e[k]['ratio_to_oracle']:.3f}"
                     for k in ("E_CL_SURE", "E_CL_CV") if k in e]
            print(f"  {name}: " + ", ".join(parts + ratio))
