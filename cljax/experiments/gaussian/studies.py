"""Monte Carlo studies of multi-task Gaussian mean estimation (paper §III; DESIGN §5).

Model: task t has N_t samples y_tn = θ*_t + η_tn, η ~ N(0, σ² I_d); the sample
means y_t = θ̂_t ~ N(θ*_t, τ_t² I_d), τ_t² = σ²/N_t.  The noise law is an argument
(``noise``, :mod:`cljax.experiments.gaussian.noise`): η = σ z with z Gaussian (the
default), Student-t, Laplace or contaminated Gaussian, always of variance σ² per
coordinate; the N_t samples of each task are drawn and averaged, so the sample
mean has the law's exact finite-sample distribution (not a Gaussian one).  Errors are
E = (1/T) Σ_t ‖θ̂_t − θ*_t‖² for

* separate (E_S), consensus (E_C, the unweighted mean of the θ̂_t, as in P_C),
* positive-part James–Stein toward the grand mean (E_JS),
* cross-learning P̄_CL with equal task weights at every ε of a grid (E_CL(ε)),
* and, for ε selection, SURE(ε) and K-fold CV(ε) (:mod:`cljax.estimators._eps_selection`).

Everything is pure and jitted: one call draws R realisations (a key each, from
one PRNG key), vmaps over them in chunks (``lax.map`` with ``batch_size``, which
bounds memory) and over the ε grid.  The projection (the w_g = 0 case) is solved
along the whole ε grid by :func:`cljax.projection.map_cross_learning_path`
(Newton on the centre warm-started from the previous ε, certified, with the cold
solver :func:`cljax.projection.project_centre_newton` wherever the
certificate fails).

Theorem 1 (E[inf_ε E_CL(ε)] < E_C and < E_S) is estimated with inf over the
grid together with ε = 0 (E_C) and ε = ∞ (E_S): a grid minimum is ≥ the true
infimum, so the estimated differences are conservative (closer to 0).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cljax.projection._centre_newton import DEFAULT_ITERATIONS, project_centre_newton, projection_divergence
from cljax.projection._centre_path import map_cross_learning_path
from cljax._src.checks import check_eps_grid
from cljax.experiments._common import mean_se
from cljax.estimators._eps_selection import cv_curve, sure
from cljax.estimators._means import james_stein
from cljax.experiments.gaussian.noise import Gaussian, NoiseLaw

Z95 = 1.959963984540054  # two-sided 95% normal quantile


class Design(NamedTuple):
    """A Gaussian multi-task design: true means (T, d), samples per task (T,), noise σ."""

    name: str
    centres: np.ndarray
    samples: np.ndarray
    sigma: float

    @property
    def tasks(self) -> int:
        return int(self.centres.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centres.shape[1])

    @property
    def noise_variances(self) -> np.ndarray:
        """τ_t² = σ²/N_t, the variance per coordinate of each sample mean."""
        return self.sigma**2 / self.samples.astype(float)


def make_design(name, centres, samples, sigma) -> Design:
    """Validated :class:`Design`; ``samples`` may be one int for every task."""
    centres = np.asarray(centres, dtype=float)
    if centres.ndim != 2 or centres.shape[0] < 1 or centres.shape[1] < 1:
        raise ValueError(f"centres must have shape (T, d) with T, d >= 1, got {centres.shape}")
    samples = np.broadcast_to(np.asarray(samples), (centres.shape[0],)).astype(int)
    if np.any(samples < 1):
        raise ValueError(f"samples per task must be >= 1, got {samples.tolist()}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a number > 0, got {sigma}")
    return Design(name, centres, samples, float(sigma))


def example2_centres(mu: float):
    """Example 2 task means (±μ, 0), (0, ±μ)."""
    return jnp.array([[mu, 0.0], [-mu, 0.0], [0.0, mu], [0.0, -mu]])


def example2_design(sigma: float, mu: float = 2.0) -> Design:
    """Example 2: T = 4, d = 2, one sample per task; E_S = 2σ², E_C = μ² + σ²/2."""
    return make_design(f"example2-sigma{sigma:g}", np.asarray(example2_centres(mu)), 1, sigma)


def random_design(name, tasks, dim, samples, sigma, spread=1.0, seed=0) -> Design:
    """θ*_t drawn once from N(0, spread² I_d) with a fixed NumPy seed (so fixed per name)."""
    if not (isinstance(tasks, (int, np.integer)) and tasks >= 1):
        raise ValueError(f"tasks (T) must be an int >= 1, got {tasks!r}")
    if not (isinstance(dim, (int, np.integer)) and dim >= 1):
        raise ValueError(f"dim (d) must be an int >= 1, got {dim!r}")
    centres = spread * np.random.default_rng(seed).standard_normal((tasks, dim))
    return make_design(name, centres, samples, sigma)


def standard_designs() -> list[Design]:
    """The designs of the comparison table: the paper's Example 2 and the ones beyond it.

    Random designs: θ*_t ~ N(0, I_d) (fixed seed), σ = 2, N_t = 4 (τ = 1), unless
    stated.  Unequal N_t: 2..20 samples.  Outlier: task 0 moved 6 units away.
    """
    designs = [example2_design(1.0), example2_design(2.0)]
    for tasks, dim in [(4, 2), (10, 2), (50, 2), (10, 1), (10, 10)]:
        designs.append(random_design(f"T{tasks}-d{dim}", tasks, dim, 4, 2.0))
    unequal = np.array([2, 2, 3, 4, 5, 6, 8, 10, 15, 20])
    designs.append(random_design("T10-d2-unequal-N", 10, 2, unequal, 2.0))
    outlier = random_design("T10-d2-outlier", 10, 2, 4, 2.0)
    centres = outlier.centres.copy()
    centres[0] += 6.0 * np.ones(2) / np.sqrt(2.0)
    designs.append(outlier._replace(centres=centres))
    return designs


def default_eps_grid(design: Design, num: int = 101) -> np.ndarray:
    """0 .. 3 × (largest distance of a centre to the mean + 3 max τ), then ε = ∞."""
    spread = np.max(np.linalg.norm(design.centres - design.centres.mean(0), axis=1))
    top = 3.0 * (spread + 3.0 * np.sqrt(np.max(design.noise_variances)))
    return np.concatenate([np.linspace(0.0, top, num), [np.inf]])


def _draw(key, centres, samples, sigma, n_max, law: NoiseLaw = Gaussian()):
    """Samples (T, N_max, d), mask (T, N_max) and the sample means (T, d).

    The samples are θ*_t + σ z with z of the standardised ``law`` (for
    :class:`~cljax.experiments.gaussian.noise.Gaussian`, ``jax.random.normal`` as before).
    """
    t, d = centres.shape
    noise = law.sample(key, (t, n_max, d), centres.dtype)
    ys = centres[:, None, :] + sigma * noise
    mask = (jnp.arange(n_max)[None, :] < samples[:, None]).astype(centres.dtype)
    means = jnp.einsum("tn,tnd->td", mask, ys) / samples[:, None].astype(centres.dtype)
    return ys, mask, means


def _mse(est, truth):
    return jnp.mean(jnp.sum((est - truth) ** 2, axis=-1), axis=-1)


def realisation_errors(key, design: Design, eps_grid, *, selection: bool = False,
                       folds: int = 0, iterations: int = DEFAULT_ITERATIONS, dtype=None,
                       cross_learning: bool = True, noise: NoiseLaw = Gaussian()):
    """Errors of one realisation: E_S, E_C, E_JS and E_CL(ε) (E,); with ``selection``
    also SURE(ε) (E,), and with ``folds`` ≥ 2 the K-fold CV(ε) (E,) (needs N_t ≥ 2).
    ``noise``: the noise law (variance σ² per coordinate whatever the law); SURE assumes
    Gaussian noise and is biased under the other laws.

    Here every ε is a cold solve; :func:`monte_carlo` passes ``cross_learning=False``
    (then the sample means are returned as ``"means"`` instead of E_CL / SURE) and
    computes E_CL and SURE for all realisations along the grid with
    :func:`cljax.projection.map_cross_learning_path`."""
    dtype = dtype or jnp.result_type(float)
    centres = jnp.asarray(design.centres, dtype)
    samples = jnp.asarray(design.samples)
    n_max = int(np.max(design.samples))
    tau2 = jnp.asarray(design.noise_variances, dtype)
    eps_grid = jnp.asarray(eps_grid, dtype)
    ys, mask, means = _draw(key, centres, samples, design.sigma, n_max, noise)
    out = {"E_S": _mse(means, centres),
           "E_C": _mse(jnp.broadcast_to(jnp.mean(means, 0), means.shape), centres),
           "E_JS": _mse(james_stein(means, tau2), centres)}

    if cross_learning:
        def at(eps):
            proj = project_centre_newton(means, eps, iterations=iterations)
            return _cl_errors(means, proj.task_params, proj.centre, eps, centres, tau2, selection)

        out["E_CL"], risk = jax.vmap(at)(eps_grid)
        if selection:
            out["SURE"] = risk
    else:
        out["means"] = means
    if folds:
        if n_max < 2 or np.min(design.samples) < 2:
            raise ValueError(f"design {design.name!r}: K-fold CV needs N_t >= 2 in every task")
        out["CV"] = cv_curve(ys, mask, eps_grid, min(folds, n_max), iterations=iterations)
    return out


def _cl_errors(means, theta, centre, eps, truth, tau2, selection):
    """E_CL at one ε and, with ``selection``, SURE (else 0)."""
    err = _mse(theta, truth)
    if not selection:
        return err, jnp.zeros((), theta.dtype)
    div = projection_divergence(means, centre, eps)
    return err, sure(means, theta, div, tau2)


def check_study_inputs(eps_grid, realisations) -> np.ndarray:
    """An int ``realisations`` ≥ 1 and a non-empty 1-D ``eps_grid`` of radii ≥ 0 (inf allowed)."""
    if not (isinstance(realisations, (int, np.integer)) and realisations >= 1):
        raise ValueError(f"realisations must be an int >= 1, got {realisations!r}")
    return np.asarray(check_eps_grid(eps_grid), dtype=float)


def monte_carlo(key, design: Design, eps_grid, realisations: int, *, selection=False,
                folds=0, batch_size=2000, iterations=DEFAULT_ITERATIONS, dtype=None,
                noise: NoiseLaw = Gaussian()):
    """Per-realisation errors (arrays with a leading axis R) of ``realisations`` draws, jitted.

    ``noise``: the noise law of the samples (:mod:`cljax.experiments.gaussian.noise`; the
    default Gaussian draws are the same as before the argument existed).

    One key per realisation (``jax.random.split(key, R)``), vmapped in chunks of
    ``batch_size`` inside one ``lax.map``; E_CL(ε) and SURE(ε) by the warm-started
    path solver over the whole grid (:mod:`cljax.projection._centre_path`, exact as the cold one).
    """
    eps_grid = check_study_inputs(eps_grid, realisations)

    @jax.jit
    def run(key, grid):
        keys = jax.random.split(key, realisations)
        one = lambda k: realisation_errors(k, design, grid, selection=selection,  # noqa: E731
                                           folds=folds, iterations=iterations, dtype=dtype,
                                           cross_learning=False, noise=noise)
        out = jax.lax.map(one, keys, batch_size=min(batch_size, realisations))
        means = out.pop("means")
        truth = jnp.asarray(design.centres, means.dtype)
        tau2 = jnp.asarray(design.noise_variances, means.dtype)
        fn = lambda a, th, c, e: _cl_errors(a, th, c, e, truth, tau2, selection)  # noqa: E731
        (out["E_CL"], risk), _ = map_cross_learning_path(means, grid, fn)
        if selection:
            out["SURE"] = risk
        return out

    return run(key, jnp.asarray(eps_grid, dtype or jnp.result_type(float)))


def theorem1(errors) -> dict:
    """Estimates of E[inf_ε E_CL(ε)] − E_C and − E_S with 95% confidence intervals.

    inf over the grid, ε = 0 (E_C) and ε = ∞ (E_S), per realisation.
    """
    best, diffs = theorem1_differences(errors)
    out = {"E_inf_CL": float(np.mean(best))}
    for name, diff in diffs.items():
        m, se = mean_se(diff)
        out[name] = {"mean": float(m), "se": float(se),
                     "ci95": [float(m - Z95 * se), float(m + Z95 * se)]}
    return out


def theorem1_differences(errors):
    """Per realisation: inf_ε E_CL(ε) (over the grid, ε = 0 and ε = ∞) and its differences
    ``{"minus_E_C": inf − E_C, "minus_E_S": inf − E_S}`` (arrays of shape (R,)).

    Each difference is ≤ 0 by construction (the infimum includes ε = 0 and ε = ∞);
    Theorem 1 is that its expectation is strictly negative.
    """
    e_cl = np.asarray(errors["E_CL"], float)
    e_s, e_c = np.asarray(errors["E_S"], float), np.asarray(errors["E_C"], float)
    best = np.minimum(np.min(e_cl, axis=1), np.minimum(e_s, e_c))
    return best, {"minus_E_C": best - e_c, "minus_E_S": best - e_s}


def verdict(ci95) -> str:
    """``"holds"`` (the 95% interval lies entirely below 0: strict improvement),
    ``"breaks"`` (entirely above 0) or ``"inconclusive"`` (it contains 0, or is NaN)."""
    low, high = ci95
    if high < 0:
        return "holds"
    if low > 0:
        return "breaks"
    return "inconclusive"


def selection_summary(errors, eps_grid) -> dict:
    """Monte Carlo MSE (mean, se) of every estimator of the comparison table.

    Oracle: the grid ε with the smallest mean E_CL.  SURE / CV: per realisation,
    E_CL at the ε minimising that realisation's SURE(ε) / CV(ε).
    """
    eps_grid = np.asarray(eps_grid, float)
    e_cl = np.asarray(errors["E_CL"], float)
    rows = {}
    for name in ("E_S", "E_C", "E_JS"):
        m, se = mean_se(errors[name])
        rows[name] = {"mean": float(m), "se": float(se)}
    curve = e_cl.mean(axis=0)
    k = int(np.argmin(curve))
    m, se = mean_se(e_cl[:, k])
    rows["E_CL_oracle"] = {"mean": float(m), "se": float(se), "eps": float(eps_grid[k])}
    r = np.arange(e_cl.shape[0])
    for name in ("SURE", "CV"):
        if name in errors:
            choice = np.argmin(np.asarray(errors[name], float), axis=1)
            m, se = mean_se(e_cl[r, choice])
            eps = eps_grid[choice]
            rows[f"E_CL_{name}"] = {"mean": float(m), "se": float(se),
                                    "eps_median": float(np.median(eps)),
                                    "ratio_to_oracle": float(m / rows["E_CL_oracle"]["mean"])}
    return rows


def example2_study(key, sigma, mu, eps_grid, realisations: int):
    """Monte Carlo E_S, E_C and E_CL(ε) of Example 2, vmapped over draws and ε (for ``cljax demo``).

    Jit-compatible (``realisations`` static).  Returns means and standard errors.
    """
    theta = example2_centres(mu)
    means = theta[None] + sigma * jax.random.normal(key, (realisations,) + theta.shape)

    e_s = jax.vmap(_mse, (0, None))(means, theta)
    e_c = jax.vmap(lambda s: _mse(jnp.broadcast_to(jnp.mean(s, 0), s.shape), theta))(means)
    e_cl, _ = map_cross_learning_path(means, jnp.asarray(eps_grid, means.dtype),
                                      lambda a, th, c, e: _mse(th, theta))
    sem = lambda x: jnp.std(x, axis=0) / np.sqrt(realisations)  # noqa: E731
    return {
        "E_S": jnp.mean(e_s), "E_S_se": sem(e_s),
        "E_C": jnp.mean(e_c), "E_C_se": sem(e_c),
        "E_CL": jnp.mean(e_cl, axis=0), "E_CL_se": sem(e_cl),
    }
