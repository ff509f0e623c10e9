"""The ``penalty`` and ``cl_resilient`` adapters of ``cljax compare`` (issue 16), against
NumPy reimplementations of their hyper-parameter choice."""

import jax
import jax.numpy as jnp
import numpy as np

from cljax.estimators import resilient_means
from cljax.methods import _interface as mi


def numpy_penalty_cv(y, grid, folds):
    """K-fold CV (sample i in fold i mod K) of θ_t = ȳ + 2/(2 + μ)(y_t − ȳ), ȳ the grand mean."""
    t, n, d = y.shape
    errors = []
    for mu in grid:
        keep = 0.0 if np.isinf(mu) else 2.0 / (2.0 + mu)
        num = den = 0.0
        for k in range(folds):
            held = np.arange(n) % folds == k
            means = y[:, ~held].mean(axis=1)
            theta = means.mean(0) + keep * (means - means.mean(0))
            num += np.sum((y[:, held] - theta[:, None, :]) ** 2)
            den += held.sum() * t
        errors.append(num / den)
    return grid[int(np.argmin(errors))]


def test_penalty_means_is_the_numpy_cv_choice():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(6, 5, 2)) + rng.normal(size=(6, 1, 2))
    x = np.zeros((6, 5, 1))
    grid = np.asarray(mi._penalty_grid(1.0, jnp.float64))
    mu = numpy_penalty_cv(y, grid, 5)
    means = y.mean(axis=1)
    keep = 0.0 if np.isinf(mu) else 2.0 / (2.0 + mu)
    want = means.mean(0) + keep * (means - means.mean(0))
    est = mi.get_estimator("penalty", "means")
    got = jax.jit(est.fit_fn)(None, x, y)
    np.testing.assert_allclose(got, want, atol=1e-10)
    assert 0 < mu < np.inf  # an interior choice on this draw, not a limit


def test_cl_resilient_means_uses_the_rule_alpha():
    rng = np.random.default_rng(6)
    y = rng.normal(size=(4, 3, 2)) + 2.0 * rng.normal(size=(4, 1, 2))
    x = np.zeros((4, 3, 1))
    tau2 = np.sum((y - y.mean(1, keepdims=True)) ** 2) / (4 * 2 * 2) / 3  # pooled s² / N
    alpha = 2.0 / (2 * tau2)
    want = jax.jit(resilient_means)(jnp.asarray(y.mean(1)), alpha)[0]
    got = jax.jit(mi.get_estimator("cl_resilient", "means").fit_fn)(None, x, y)
    np.testing.assert_allclose(got, want, atol=1e-10)
    assert mi.min_samples("cl_resilient", "means") == 2
    assert mi.min_samples("penalty", "linear") == 2
