"""Figures 4–8 of the COVID-19 SIR experiment, each written as PNG and CSV.

Every function takes the plain results of :mod:`cljax.experiments.covid.experiment` and a
folder, writes ``figN_<name>.png`` and ``figN_<name>.csv`` there and returns
the two paths.  matplotlib is imported inside (the ``plot`` extra).
"""

from __future__ import annotations

import csv
import os

import numpy as np

from cljax.experiments._common import pyplot, write_csv
from cljax.experiments.covid import sir as sir
from cljax.experiments.covid.experiment import CovidProblem

LABELS = {"separate": "separate", "consensus": "consensus (paper: count-weighted)",
          "consensus_normalised": "consensus (normalised, eps = 0)",
          "cross_learning": "cross-learning"}


def _save(plt, fig, png, title=None):
    """Lay out, write the PNG (``title`` also as its metadata) and close."""
    fig.tight_layout()
    fig.savefig(png, dpi=120, metadata={"Title": title} if title else None)
    plt.close(fig)


def _paths(folder, stem):
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, stem + ".png"), os.path.join(folder, stem + ".csv")


def fig4_data(problem: CovidProblem, folder) -> tuple[str, str]:
    """Fig 4: the infected series I(t) of every country's cut window."""
    plt = pyplot()
    png, path_csv = _paths(folder, "fig4_data")
    rows = []
    fig, ax = plt.subplots(figsize=(8, 5))
    for w in problem.windows:
        days = np.arange(w.days)
        ax.plot(days, w.infected / w.population, lw=2 if w is problem.target else 1,
                label=w.iso_code)
        for k, d in enumerate(w.dates):
            rows.append([w.iso_code, k, d.isoformat(), w.infected[k], w.susceptible[k],
                         w.recovered[k], w.population])
    ax.set_yscale("log")
    ax.set_xlabel("days from window start")
    ax.set_ylabel("I / population (14-day sum of new cases)")
    title = f"COVID-19 windows ({problem.source})"
    ax.set_title(title)
    ax.legend(ncol=3, fontsize=7)
    _save(plt, fig, png, title)
    write_csv(path_csv, ["iso_code", "day", "date", "infected", "susceptible", "recovered",
                          "population"], rows)
    return png, path_csv


def fig5_prediction(problem: CovidProblem, result: dict, folder,
                    solver: sir.SIRSolver = sir.DEFAULT_SOLVER) -> tuple[str, str]:
    """Fig 5: the target's data (train / test) and the fitted SIR curve of every estimator
    (both consensus baselines included)."""
    plt = pyplot()
    png, path_csv = _paths(folder, "fig5_prediction")
    target = problem.target
    initial = np.array([target.susceptible[0], target.infected[0]]) / target.population
    days = max(3 * target.days, 60)
    curves = {}
    for name, est in result["estimators"].items():
        theta = np.array([est["beta"], est["gamma"]])
        curves[name] = np.asarray(sir.infected(theta, initial, days, solver)) * target.population
    fig, ax = plt.subplots(figsize=(8, 5))
    n = problem.train_days()
    ax.plot(np.arange(n), target.infected[:n], "ko", label=f"train (first {n} days)")
    ax.plot(np.arange(n, target.days), target.infected[n:], "o", mfc="none", color="gray",
            label="test")
    styles = {"separate": "C3--", "consensus": "C0-.", "consensus_normalised": "C1:",
              "cross_learning": "C2-"}
    for name, curve in curves.items():
        est = result["estimators"][name]
        ax.plot(np.arange(days), curve, styles.get(name, "-"),
                label=f"{LABELS.get(name, name)} (peak error "
                      f"{est['peak_error_percent']:.2f}%)")
    ax.set_ylim(0, 1.5 * target.infected.max())
    ax.set_xlabel(f"days from {target.start_date}")
    ax.set_ylabel("infected I")
    ax.set_title(f"{target.iso_code}, N = {result['n_train']}, eps = {result['eps']:g}")
    ax.legend(fontsize=8)
    _save(plt, fig, png)
    rows = []
    for d in range(days):
        truth = target.infected[d] if d < target.days else ""
        split = ("train" if d < n else "test") if d < target.days else ""
        rows.append([d, truth, split] + [curves[k][d] for k in curves])
    write_csv(path_csv, ["day", "infected_true", "split"] + list(curves), rows)
    return png, path_csv


def fig6_parameters(problem: CovidProblem, result: dict, folder) -> tuple[str, str]:
    """Fig 6: (β, γ) per country, separate and cross-learning, with the ε-ball."""
    plt = pyplot()
    png, path_csv = _paths(folder, "fig6_parameters")
    sep = np.asarray(result["separate_params"])
    cl = np.asarray(result["cross_learning_params"])
    centre = np.asarray(result["cross_learning_global"])
    eps = result["eps"]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(sep[:, 0], sep[:, 1], marker="x", color="C3", label="separate")
    ax.scatter(cl[:, 0], cl[:, 1], marker="o", color="C2", label=f"cross-learning eps={eps:g}")
    ax.scatter(*centre, marker="*", s=150, color="k", label="centroid")
    ax.add_patch(plt.Circle(centre, eps, fill=False, ls="--", color="k"))
    for code, p in zip(problem.iso_codes, cl):
        ax.annotate(code, p, fontsize=7)
    ax.set_xlabel("beta")
    ax.set_ylabel("gamma")
    ax.set_aspect("equal")
    ax.legend(fontsize=8)
    _save(plt, fig, png)
    rows = [[c, *s, *k] for c, s, k in zip(problem.iso_codes, sep, cl)]
    rows.append(["centroid", "", "", *centre])
    write_csv(path_csv, ["iso_code", "beta_separate", "gamma_separate",
                          "beta_cross_learning", "gamma_cross_learning"], rows)
    return png, path_csv


def fig7_eps_sweep(sweep: dict, baselines: dict, folder) -> tuple[str, str]:
    """Fig 7: peak and lag errors against ε (log scale), with the baselines (separate and
    both consensus fits) as horizontal lines; the CSV lists the baselines' values too."""
    plt = pyplot()
    png, path_csv = _paths(folder, "fig7_eps_sweep")
    eps = np.asarray(sweep["eps"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "peak_error_percent", "peak error (%)"),
                           (axes[1], "lag_days", "lag (days)")):
        ax.plot(eps, np.maximum(np.asarray(sweep[key], float), 1e-3), "C2.-",
                label="cross-learning")
        for name, style in (("separate", "C3--"), ("consensus", "C0-."),
                            ("consensus_normalised", "C1:")):
            if name in baselines:
                ax.axhline(max(baselines[name][key], 1e-3), color=style[:2], ls=style[2:],
                           label=LABELS[name])
        ax.set_yscale("log")
        ax.set_xlabel("eps")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    _save(plt, fig, png)
    names = [k for k in ("separate", "consensus", "consensus_normalised") if k in baselines]
    rows = [list(r) + [baselines[k][c] for k in names
                       for c in ("peak_error_percent", "lag_days")]
            for r in zip(eps, sweep["beta"], sweep["gamma"], sweep["peak_error_percent"],
                         sweep["lag_days"])]
    write_csv(path_csv, ["eps", "beta", "gamma", "peak_error_percent", "lag_days"]
              + [f"{k}_{c}" for k in names for c in ("peak_error_percent", "lag_days")], rows)
    return png, path_csv


def fig8_n_sweep(sweep: dict, folder) -> tuple[str, str]:
    """Fig 8: peak error against N for every estimator, both consensus fits included (log)."""
    plt = pyplot()
    png, path_csv = _paths(folder, "fig8_n_sweep")
    n = np.asarray(sweep["n"])
    fig, ax = plt.subplots(figsize=(7, 4))
    styles = {"separate": "C3x--", "consensus": "C0s-.", "consensus_normalised": "C1d:",
              "cross_learning": "C2o-"}
    for name, est in sweep["estimators"].items():
        ax.plot(n, np.maximum(est["peak_error_percent"], 1e-3), styles.get(name, "-"),
                label=LABELS.get(name, name))
    ax.set_yscale("log")
    ax.set_xlabel("N (training days of the target)")
    ax.set_ylabel("peak error (%)")
    ax.set_title(f"eps = {sweep['eps']:g}")
    ax.legend(fontsize=8)
    _save(plt, fig, png)
    header, cols = ["n"], [n]
    for name, est in sweep["estimators"].items():
        for key in ("beta", "gamma", "peak_error_percent", "lag_days"):
            header.append(f"{name}_{key}")
            cols.append(est[key])
    write_csv(path_csv, header, list(zip(*cols)))
    return png, path_csv
