"""COVID-19 SIR cross-learning: predict a country's peak from N days (paper §VI-A).

The target country (ARG in the paper) gives its first N days; the 14 sources
give their whole cut windows (:mod:`cljax.experiments.covid.cases`).  Per country t the loss
is the scale-free least squares (DESIGN §6)

    L_t(θ) = Σ_days m_t(τ) (i_θ(τ) − i_t(τ))² / Σ_days m_t(τ) i_t(τ)²,   θ = (β, γ) ≥ 0,

with i the infected fraction, i_θ the SIR solution from the country's own
initial condition (:mod:`cljax.experiments.covid.sir`) and m_t the mask of its training days.
Every country is padded to one length so that all of them are fitted at once
with ``vmap``.  Four estimators:

* separate (P_S): min L_t per country, bounded Levenberg–Marquardt, vmapped;
* consensus (the paper's, the headline): the authors' centralised fit, one θ
  minimising the raw count residuals Σ_t Σ_days m_t (I_θ − I_t)² (people, not
  fractions, no per-country normalisation: their code comments it out), so the
  big countries (IND, USA, BRA) carry most of the weight (DESIGN §6);
* consensus_normalised: one θ minimising Σ_t L_t, the ε = 0 limit of the
  cross-learning objective below;
* cross-learning (P_CL): min Σ_t L_t s.t. ‖θ_t − θ_g‖ ≤ ε, by ADMM
  (Algorithm 1, :class:`cljax.ADMM`) with the bounded LM x-step
  (:class:`cljax.LeastSquaresProx`) and the exact projection z-step.

Each country keeps its own initial condition and population in every estimator.
The window protocol (``"cljax"`` or ``"authors"``,
:mod:`cljax.experiments.covid.cases`) sets the cut and the target's training days.

Metrics: simulate the target for ``horizon_factor`` (10) × its ground-truth
length from the same initial condition; peak error |max I_model − max I_true| /
max I_true and lag |argmax I_model − argmax I_true| days.

Everything from the data arrays on is jitted; the ε sweep (Fig 7) and the N
sweep (Fig 8) are single programs vmapped over ε or N.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cljax.experiments.covid import sir as sir
from cljax.solvers._admm import ADMM, authors_schedule
from cljax._src.checks import check_eps, check_eps_grid
from cljax.experiments.covid.cases import (DEFAULT_PEAK_FRACTION, CountryWindow, build_windows,
                                           check_protocol, cut_length, load_windows, target_of)
from cljax.solvers._prox import LeastSquaresProx

DEFAULT_THETA0 = (0.3, 0.1)  # R0 = 3 with a 10-day infectious period: a textbook start


class SIRTasks(NamedTuple):
    """Per-country arrays, leading axis T (countries), padded to ``num_days``.

    ``weight`` = mask / sqrt(Σ mask · observed²) (:func:`loss_weight`), so the
    residual of country t is weight · (i_model − observed) and its loss
    L_t = Σ residual².  The mask (:func:`training_mask`) is every day of a
    source's window and the target's first N days, whatever their values.
    """

    initial: jax.Array  # (T, 2) fractions (s0, i0)
    observed: jax.Array  # (T, D) infected fraction, zero-padded
    weight: jax.Array  # (T, D)


@dataclass(frozen=True)
class CovidProblem:
    """The windows of one experiment, the target's index and its training days.

    ``source`` names the case data (figure titles); ``protocol`` the windows'
    protocol (:func:`train_days` uses it).
    """

    windows: tuple  # CountryWindow, target first
    n_train: int
    num_days: int  # padded length D
    source: str = "JHU CSSE"
    protocol: str = "cljax"
    peak_fraction: float = DEFAULT_PEAK_FRACTION

    def train_days(self, n_train=None) -> int:
        """Days of the target fitted for "N training days".

        ``"cljax"``: N; ``"authors"``: the first N days cut as the authors cut every
        series (``I[:t2]``, t2 the last day above peak_fraction · their max), which
        is N − 1 while the wave rises.
        """
        n = self.n_train if n_train is None else int(n_train)
        if self.protocol == "cljax":
            return n
        return cut_length(self.target.infected[:n], self.peak_fraction, "authors")

    @property
    def iso_codes(self) -> list[str]:
        return [w.iso_code for w in self.windows]

    @property
    def target(self) -> CountryWindow:
        return self.windows[0]

    @property
    def horizon(self) -> int:
        """Days simulated for the metrics: 10 × the ground-truth length."""
        return HORIZON_FACTOR * self.target.days


HORIZON_FACTOR = 10


def make_problem(windows=None, target: str | None = None, n_train: int = 10,
                 source: str = "JHU CSSE", protocol: str = "cljax") -> CovidProblem:
    """Set up the experiment; the target moves to index 0.

    Args:
      windows: CountryWindow tuple (default: the paper's 15, shipped data, cut
        with ``protocol``).
      target: ISO code of the target country, one of the windows (default: the
        shipped windows table's role = target row, ARG; required with ``windows``).
      n_train: days of the target used for training (2 ≤ N ≤ its cut length).
      source: name of the case data, for figure titles.
      protocol: ``"cljax"`` or ``"authors"``: how the target's N days are cut
        (:meth:`CovidProblem.train_days`); ``windows`` should be cut the same way.
    """
    check_protocol(protocol)
    if target is None:
        if windows is not None:
            raise ValueError("target is required when windows are given")
        target = target_of(load_windows())
    windows = build_windows(protocol=protocol) if windows is None else tuple(windows)
    codes = [w.iso_code for w in windows]
    if target not in codes:
        import difflib

        close = difflib.get_close_matches(str(target).upper(), codes, n=3, cutoff=0.3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"target {target!r} is not one of the windows ({', '.join(codes)})"
                         + hint)
    n_train = int(n_train)
    k = codes.index(target)
    ordered = (windows[k],) + windows[:k] + windows[k + 1:]
    if not 2 <= n_train <= ordered[0].days:
        raise ValueError(f"n_train = {n_train} must be between 2 and the target {target}'s "
                         f"window length, {ordered[0].days} days")
    problem = CovidProblem(ordered, n_train, max(w.days for w in ordered), source, protocol)
    if problem.train_days() < 1:
        raise ValueError(f"n_train = {n_train}: the authors' cut of the target {target}'s "
                         f"first {n_train} days keeps no day; give a larger N")
    return problem


def training_mask(window_mask, n_train):
    """The days each country is fitted on: its window, the target's (row 0) only < N.

    ``window_mask`` (T, D) is 1 on each country's window days; traceable in N.
    """
    days = jnp.arange(window_mask.shape[1])
    return window_mask.at[0].set(jnp.where(days < n_train, window_mask[0], 0.0))


def loss_weight(mask, observed):
    """mask / sqrt(Σ_days mask · observed²) per country (row), the scale-free loss weight."""
    return mask / jnp.sqrt(jnp.sum(mask * observed**2, axis=-1, keepdims=True))


def count_weight(mask, observed, population):
    """mask · N_t / sqrt(Σ_t Σ_days mask · (N_t observed)²): the paper's consensus weight.

    With it Σ residual² = Σ_t Σ_days m_t (I_θ − I_t)² / Σ_t Σ_days m_t I_t², the
    authors' raw count objective divided by one constant for all countries, so it
    has the same minimiser (the constant only keeps float32 in range).
    """
    counts = mask * population[:, None]
    return counts / jnp.sqrt(jnp.sum(counts * population[:, None] * observed**2))


def check_loss_scale(problem: CovidProblem, n_train) -> None:
    """Raise unless every country's training days have Σ observed² > 0.

    An all-zero infected series (or a target whose first N days are zero) has no
    scale for the loss; its weight would be 0/0 = NaN and spread to every fit.
    """
    for k, w in enumerate(problem.windows):
        days = int(n_train) if k == 0 else w.days
        if not np.sum((w.infected[:days] / w.population) ** 2) > 0:
            what = f"the first {days} training days" if k == 0 else f"its {days}-day window"
            raise ValueError(f"{w.iso_code}: the infected series is zero on {what} from "
                             f"{w.start_date}; the scale-free loss needs some infections")


def populations(problem: CovidProblem, dtype=None):
    """(T,) population of every country, target first."""
    return jnp.asarray([w.population for w in problem.windows], dtype or jnp.result_type(float))


def padded_arrays(problem: CovidProblem, dtype=None):
    """(initial (T, 2), observed (T, D), window (T, D)): fractions padded to D days,
    ``window`` = 1 on each country's window days."""
    t, d = len(problem.windows), problem.num_days
    observed = np.zeros((t, d))
    window = np.zeros((t, d))
    initial = np.zeros((t, 2))
    for k, w in enumerate(problem.windows):
        observed[k, :w.days] = w.infected / w.population
        window[k, :w.days] = 1.0
        initial[k] = w.susceptible[0] / w.population, w.infected[0] / w.population
    dtype = dtype or jnp.result_type(float)
    return tuple(jnp.asarray(a, dtype) for a in (initial, observed, window))


def masked_tasks(initial, observed, window, n_train) -> SIRTasks:
    """The tasks with the target trained on its first ``n_train`` days (traceable in N).

    The one masking rule of every experiment (single run, ε sweep, N sweep).
    """
    return SIRTasks(initial, observed, loss_weight(training_mask(window, n_train), observed))


def count_tasks(initial, observed, window, population, n_train) -> SIRTasks:
    """The tasks of the paper's count-weighted consensus (:func:`count_weight`), same mask."""
    mask = training_mask(window, n_train)
    return SIRTasks(initial, observed, count_weight(mask, observed, population))


def task_arrays(problem: CovidProblem, n_train=None, dtype=None) -> SIRTasks:
    """The padded arrays; ``n_train`` (default the problem's) masks the target with
    :meth:`CovidProblem.train_days` days."""
    n = problem.train_days(n_train)
    check_loss_scale(problem, n)
    return masked_tasks(*padded_arrays(problem, dtype), n)


def count_task_arrays(problem: CovidProblem, n_train=None, dtype=None) -> SIRTasks:
    """:func:`task_arrays` with the paper's count weights (its consensus objective)."""
    n = problem.train_days(n_train)
    check_loss_scale(problem, n)
    initial, observed, window = padded_arrays(problem, dtype)
    return count_tasks(initial, observed, window, populations(problem, observed.dtype), n)


# ---------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SIRFit:
    """Settings of the fits (separate, both consensus, cross-learning).

    Attributes:
      solver: SIR integration (:class:`cljax.sir.SIRSolver`).
      theta0: starting (β, γ) of the separate and consensus fits.
      fit_steps: LM iterations of the separate and consensus fits.
      admm_iterations: ADMM iterations (the authors: 200).
      prox_steps: LM iterations per ADMM x-step (warm-started).
      rescale_dual: rescale u when λ changes (Boyd); False = the authors' code.
      schedule: λ_k; default the authors' λ0 = 1, ×0.9 every 10 iterations.
    """

    solver: sir.SIRSolver = sir.DEFAULT_SOLVER
    theta0: tuple = DEFAULT_THETA0
    fit_steps: int = 100
    admm_iterations: int = 200
    prox_steps: int = 5
    rescale_dual: bool = True
    schedule: object = field(default_factory=authors_schedule)

    def residual_fn(self, num_days: int):
        solver = self.solver

        def residual(theta, task):
            initial, observed, weight = task
            return weight * (sir.infected(theta, initial, num_days, solver) - observed)

        return residual

    def prox(self, num_days: int, steps: int) -> LeastSquaresProx:
        return LeastSquaresProx(self.residual_fn(num_days), num_steps=steps, lower=0.0)


def fit_separate(tasks: SIRTasks, fit: SIRFit = SIRFit()):
    """P_S: min_θ L_t(θ), θ ≥ 0, for every country at once (vmapped LM). (T, 2)."""
    d = tasks.observed.shape[1]
    prox = fit.prox(d, fit.fit_steps)
    t = tasks.observed.shape[0]
    theta0 = jnp.broadcast_to(jnp.asarray(fit.theta0, tasks.observed.dtype), (t, 2))
    inf = jnp.asarray(jnp.inf, tasks.observed.dtype)  # no proximal term
    return jax.vmap(prox.solve, in_axes=(0, 0, None, 0))(theta0, theta0, inf, tasks)


def fit_consensus(tasks: SIRTasks, fit: SIRFit = SIRFit()):
    """One θ ≥ 0 minimising Σ_t Σ_days residual_t(θ)², each country with its own start.

    With :func:`task_arrays` (per-country normalised weights) this is P_C for
    Σ_t L_t, the ε = 0 limit of cross-learning (``consensus_normalised``); with
    :func:`count_task_arrays` it is the paper's count-weighted consensus. Returns (2,).
    """
    residual = fit.residual_fn(tasks.observed.shape[1])

    def stacked(theta, all_tasks):
        return jax.vmap(residual, in_axes=(None, 0))(theta, all_tasks)

    prox = LeastSquaresProx(stacked, num_steps=fit.fit_steps, lower=0.0)
    theta0 = jnp.asarray(fit.theta0, tasks.observed.dtype)
    return prox.solve(theta0, theta0, jnp.asarray(jnp.inf, theta0.dtype), tasks)


class CrossLearningFit(NamedTuple):
    task_params: jax.Array  # (T, 2), the feasible z
    global_params: jax.Array  # (2,)
    x_params: jax.Array  # (T, 2), the last x-step
    primal_residual: jax.Array
    dual_residual: jax.Array


def fit_cross_learning(tasks: SIRTasks, eps, fit: SIRFit = SIRFit(), init=None):
    """P_CL by ADMM from ``init`` (default: the separate fits; θ_g their mean)."""
    d = tasks.observed.shape[1]
    admm = ADMM(fit.prox(d, fit.prox_steps), schedule=fit.schedule,
                rescale_dual=fit.rescale_dual)
    init = fit_separate(tasks, fit) if init is None else init
    state, history = admm.run(init, tasks, eps, fit.admm_iterations)
    return CrossLearningFit(state.task_params, state.global_params, state.x, history.primal_residual[-1],
                            history.dual_residual[-1])


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


class PeakMetrics(NamedTuple):
    peak_error: jax.Array  # relative, |Imax_model − Imax_true| / Imax_true
    lag: jax.Array  # days
    peak_model: jax.Array  # infected fraction
    peak_day_model: jax.Array


def peak_metrics(theta, tasks: SIRTasks, truth, horizon: int, solver=sir.DEFAULT_SOLVER):
    """Peak and lag errors of the target (index 0) simulated for ``horizon`` days.

    ``truth``: the target's ground-truth infected fraction (its cut window).
    """
    i_model = sir.infected(theta, tasks.initial[0], horizon, solver)
    truth = jnp.asarray(truth, i_model.dtype)
    peak_true, day_true = jnp.max(truth), jnp.argmax(truth)
    peak, day = jnp.max(i_model), jnp.argmax(i_model)
    return PeakMetrics(jnp.abs(peak - peak_true) / peak_true, jnp.abs(day - day_true),
                       peak, day)


def truth_fraction(problem: CovidProblem):
    return problem.target.infected / problem.target.population


# ---------------------------------------------------------------------------
# The experiment: all four estimators at one (N, ε), and the sweeps
# ---------------------------------------------------------------------------


ESTIMATORS = ("separate", "consensus", "consensus_normalised", "cross_learning")

ESTIMATOR_NOTES = {
    "separate": "each country alone: min L_t (per-country normalised least squares)",
    "consensus": "the paper's consensus: one (beta, gamma) minimising the raw count "
                 "residuals sum_t sum_days (I_model - I_data)^2, no per-country "
                 "normalisation (the authors' centralised fit)",
    "consensus_normalised": "one (beta, gamma) minimising sum_t L_t (per-country "
                            "normalised): the eps = 0 limit of cross-learning",
    "cross_learning": "min sum_t L_t s.t. ||theta_t - theta_g|| <= eps (ADMM)",
}


def _all_estimators(tasks, counts, eps, fit, truth, horizon):
    """The four fits and the target's metrics (traceable; the one body of every run)."""
    sep = fit_separate(tasks, fit)
    con = fit_consensus(counts, fit)
    con_n = fit_consensus(tasks, fit)
    cl = fit_cross_learning(tasks, eps, fit, init=sep)
    metric = lambda th: peak_metrics(th, tasks, truth, horizon, fit.solver)  # noqa: E731
    thetas = (sep[0], con, con_n, cl.task_params[0])
    return (sep, con, con_n, cl), thetas, tuple(metric(th) for th in thetas)


def _metrics_dict(theta, m, population) -> dict:
    return {"beta": float(theta[0]), "gamma": float(theta[1]),
            "peak_error_percent": 100.0 * float(m.peak_error), "lag_days": int(m.lag),
            "peak_model": float(m.peak_model) * population,
            "peak_day_model": int(m.peak_day_model)}


def run_estimators(problem: CovidProblem, eps: float = 0.1, fit: SIRFit = SIRFit()) -> dict:
    """Separate, both consensus fits and cross-learning at the problem's N and one ε.

    Returns plain numbers: per estimator (:data:`ESTIMATORS`) the target's β, γ,
    peak error (%) and lag (days), and every country's (β, γ) for separate and
    cross-learning.  ``consensus`` is the paper's count-weighted fit;
    ``consensus_normalised`` the ε = 0 limit of cross-learning (:data:`ESTIMATOR_NOTES`).
    """
    eps = check_eps(eps)
    tasks = task_arrays(problem)
    counts = count_task_arrays(problem)
    truth = truth_fraction(problem)
    horizon = problem.horizon

    @jax.jit
    def solve(tasks, counts, eps):
        return _all_estimators(tasks, counts, eps, fit, truth, horizon)

    dtype = tasks.observed.dtype
    (sep, con, con_n, cl), thetas, metrics = jax.device_get(
        solve(tasks, counts, jnp.asarray(eps, dtype)))
    out = {"target": problem.target.iso_code, "n_train": problem.n_train,
           "train_days": problem.train_days(), "protocol": problem.protocol,
           "eps": float(eps), "dtype": str(dtype), "countries": problem.iso_codes,
           "estimators": {}}
    for name, theta, m in zip(ESTIMATORS, thetas, metrics):
        out["estimators"][name] = _metrics_dict(theta, m, problem.target.population)
    out["estimator_notes"] = dict(ESTIMATOR_NOTES)
    out["truth"] = {"peak": float(np.max(problem.target.infected)),
                    "peak_day": int(np.argmax(problem.target.infected)),
                    "days": problem.target.days}
    out["separate_params"] = np.asarray(sep).tolist()
    out["consensus_params"] = np.asarray(con).tolist()
    out["consensus_normalised_params"] = np.asarray(con_n).tolist()
    out["cross_learning_params"] = np.asarray(cl.task_params).tolist()
    out["cross_learning_global"] = np.asarray(cl.global_params).tolist()
    out["admm_primal_residual"] = float(cl.primal_residual)
    out["admm_dual_residual"] = float(cl.dual_residual)
    return out


def eps_sweep_program(problem: CovidProblem, fit: SIRFit = SIRFit(), progress=None):
    """A jitted f(tasks, counts, eps_grid) solving P_CL for every ε at once (vmap over ε).

    Returns (z (E, T, 2), z_global (E, 2), PeakMetrics with leading axis E,
    baselines): ``baselines`` maps separate, consensus and consensus_normalised
    (ε-free) to (θ of the target, PeakMetrics).  ``progress(k)``, if given, is
    called from the device each 10 ADMM iterations (k = iteration) of the first ε value.
    """
    truth = truth_fraction(problem)
    horizon = problem.horizon
    d = problem.num_days

    def one(tasks, init, eps):
        admm = ADMM(fit.prox(d, fit.prox_steps), schedule=fit.schedule,
                    rescale_dual=fit.rescale_dual)
        state = admm.init(init, eps)

        def body(s, _):
            s, _ = admm.step(s, tasks, eps)
            if progress is not None:
                jax.lax.cond(s.iteration % 10 == 0,
                             lambda k: jax.debug.callback(progress, k), lambda k: None,
                             s.iteration)
            return s, None

        state, _ = jax.lax.scan(body, state, None, length=fit.admm_iterations)
        m = peak_metrics(state.task_params[0], tasks, truth, horizon, fit.solver)
        return state.task_params, state.global_params, m

    @jax.jit
    def sweep(tasks, counts, eps_grid):
        init = fit_separate(tasks, fit)
        metric = lambda th: peak_metrics(th, tasks, truth, horizon, fit.solver)  # noqa: E731
        con, con_n = fit_consensus(counts, fit), fit_consensus(tasks, fit)
        baselines = {name: (th, metric(th)) for name, th in
                     (("separate", init[0]), ("consensus", con),
                      ("consensus_normalised", con_n))}
        z, zg, m = jax.vmap(one, in_axes=(None, None, 0))(tasks, init, eps_grid)
        return z, zg, m, baselines

    return sweep


def eps_sweep(problem: CovidProblem, eps_grid, fit: SIRFit = SIRFit(), progress=None) -> dict:
    """Fig 7: P_CL over ``eps_grid`` as one jitted program vmapped over ε.

    ``baselines`` holds the ε-free estimators (separate and both consensus fits) of
    the same program, each as :func:`run_estimators` reports it.
    """
    grid = np.asarray(check_eps_grid(eps_grid), float)
    tasks = task_arrays(problem)
    counts = count_task_arrays(problem)
    grid = jnp.asarray(grid, tasks.observed.dtype)
    z, zg, m, base = jax.device_get(
        eps_sweep_program(problem, fit, progress)(tasks, counts, grid))
    pop = problem.target.population
    return {"eps": np.asarray(grid).tolist(),
            "beta": np.asarray(z[:, 0, 0]).tolist(), "gamma": np.asarray(z[:, 0, 1]).tolist(),
            "peak_error_percent": (100 * np.asarray(m.peak_error)).tolist(),
            "lag_days": np.asarray(m.lag).astype(int).tolist(),
            "task_params": np.asarray(z).tolist(), "global_params": np.asarray(zg).tolist(),
            "baselines": {name: _metrics_dict(th, mm, pop) for name, (th, mm) in base.items()}}


def n_sweep(problem: CovidProblem, n_grid, eps: float = 0.1, fit: SIRFit = SIRFit()) -> dict:
    """Fig 8: the four estimators for every N in ``n_grid`` (one program vmapped over N).

    Each N is the problem :func:`run_estimators` solves with ``n_train = N`` (the
    target fitted on :meth:`CovidProblem.train_days` (N) days, listed as ``train_days``).
    """
    n_grid = np.asarray(n_grid, int).ravel()
    if n_grid.size == 0:
        raise ValueError("n_grid is empty; give at least one N (training days of the target)")
    if n_grid.min() < 2 or n_grid.max() > problem.target.days:
        raise ValueError(f"n_grid must lie in 2..{problem.target.days} (the target's "
                         f"window), got {n_grid.min()}..{n_grid.max()}")
    eps = check_eps(eps)
    days = np.asarray([problem.train_days(n) for n in n_grid], int)
    for n, k in zip(n_grid, days):
        if k < 1:
            raise ValueError(f"N = {n}: the authors' cut of the target's first {n} days "
                             "keeps no day; start the N grid higher")
        check_loss_scale(problem, k)
    initial, observed, window = padded_arrays(problem)
    pop = populations(problem, observed.dtype)
    truth = truth_fraction(problem)
    horizon = problem.horizon

    def one(n, eps):
        tasks = masked_tasks(initial, observed, window, n)
        counts = count_tasks(initial, observed, window, pop, n)
        _, thetas, metrics = _all_estimators(tasks, counts, eps, fit, truth, horizon)
        return thetas, metrics

    thetas, metrics = jax.device_get(jax.jit(jax.vmap(one, in_axes=(0, None)))(
        jnp.asarray(days), jnp.asarray(eps, observed.dtype)))
    out = {"n": n_grid.tolist(), "train_days": days.tolist(), "eps": float(eps),
           "estimators": {}}
    for name, th, m in zip(ESTIMATORS, thetas, metrics):
        out["estimators"][name] = {
            "beta": np.asarray(th[:, 0]).tolist(), "gamma": np.asarray(th[:, 1]).tolist(),
            "peak_error_percent": (100 * np.asarray(m.peak_error)).tolist(),
            "lag_days": np.asarray(m.lag).astype(int).tolist()}
    return out


def default_problem(target=None, n_train=10, cases=None, windows=None, protocol="cljax",
                    allow_negative=False) -> CovidProblem:
    """The paper's setup from the shipped data (or a user's cases/windows files).

    ``target=None`` takes the windows table's role = target row (ARG when shipped);
    ``protocol`` cuts the windows and the target's N days (``"cljax"`` or ``"authors"``);
    ``allow_negative`` accepts negative new_cases.
    """
    import os

    from cljax.experiments.covid.cases import load_cases

    check_protocol(protocol)
    specs = load_windows(windows)
    target = target_of(specs) if target is None else target
    table = load_cases(cases, countries=[w.iso_code for w in specs])
    source = "JHU CSSE" if cases is None else os.path.basename(os.fspath(cases))
    windows = build_windows(table, specs, protocol=protocol, allow_negative=allow_negative)
    return make_problem(windows, target, n_train, source, protocol)
