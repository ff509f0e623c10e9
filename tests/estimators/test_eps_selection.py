"""SURE (exact divergence vs autodiff vs finite differences, unbiasedness) and K-fold CV."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.projection._centre_newton import project_centre_newton, projection_divergence
from cljax.estimators._eps_selection import (cv_curve, divergence_autodiff, fold_masks, select, sure,
                                 sure_curve)


# ε and the weights are arguments: one compile per shape, shared by the cases
_project_30 = jax.jit(lambda p, eps, w: project_centre_newton(p, eps, w, iterations=30))


def finite_difference_divergence(points, eps, weights, h=1e-6):
    t, d = points.shape
    div = np.zeros(t)
    for i in range(t):
        for j in range(d):
            e = np.zeros((t, d))
            e[i, j] = h
            plus = _project_30(points + e, eps, weights).task_params
            minus = _project_30(points - e, eps, weights).task_params
            div[i] += (plus[i, j] - minus[i, j]) / (2 * h)
    return div


@pytest.mark.parametrize("tasks,dim,eps", [(4, 2, 0.7), (4, 2, 1.8), (5, 3, 1.0), (3, 1, 0.4),
                                           (6, 2, 0.0), (4, 2, 6.0)])
def test_exact_divergence_matches_autodiff_and_finite_differences(tasks, dim, eps):
    rng = np.random.default_rng(tasks + dim)
    points = jnp.asarray(rng.normal(size=(tasks, dim)) * 2.0)
    weights = jnp.asarray(rng.uniform(0.5, 2.0, size=tasks))
    proj = _project_30(points, eps, weights)
    exact = projection_divergence(points, proj.centre, eps, weights)
    np.testing.assert_allclose(exact, divergence_autodiff(points, eps, weights), atol=1e-6)
    np.testing.assert_allclose(exact, finite_difference_divergence(points, eps, weights), atol=1e-5)
    # a projection is 1-Lipschitz: 0 <= div_t <= d
    assert np.all(np.asarray(exact) >= -1e-12) and np.all(np.asarray(exact) <= dim + 1e-12)


def test_divergence_limits():
    points = jnp.asarray(np.random.default_rng(2).normal(size=(5, 3)))
    w = jnp.array([1.0, 2.0, 3.0, 1.0, 1.0])
    c = project_centre_newton(points, 0.0, w).centre
    # consensus: θ_t = Σ w_s a_s / Σ w, so div_t = d w_t / Σ w
    np.testing.assert_allclose(projection_divergence(points, c, 0.0, w), 3 * w / 8.0, atol=1e-12)
    c = project_centre_newton(points, np.inf, w).centre
    np.testing.assert_allclose(projection_divergence(points, c, np.inf, w), np.full(5, 3.0))


def test_sure_is_unbiased_for_the_cross_learning_risk():
    # Monte Carlo: mean of SURE(ε) − E_CL(ε) is 0 within 4 standard errors, at every ε.
    tasks, dim, r = 6, 2, 4000
    rng = np.random.default_rng(0)
    truth = jnp.asarray(rng.normal(size=(tasks, dim)))
    tau2 = jnp.asarray(rng.uniform(0.5, 2.0, size=tasks))
    grid = jnp.array([0.0, 0.3, 0.8, 1.5, 3.0, np.inf])
    noise = jax.random.normal(jax.random.PRNGKey(1), (r, tasks, dim))
    means = truth + jnp.sqrt(tau2)[None, :, None] * noise

    @jax.jit
    def diffs(y):
        def at(eps):
            proj = project_centre_newton(y, eps)
            div = projection_divergence(y, proj.centre, eps)
            risk = jnp.mean(jnp.sum((proj.task_params - truth) ** 2, 1))
            return sure(y, proj.task_params, div, tau2) - risk
        return jax.vmap(at)(grid)

    d = np.asarray(jax.lax.map(diffs, means, batch_size=500))
    z = d.mean(0) / (d.std(0, ddof=1) / np.sqrt(r))
    assert np.all(np.abs(z) < 4), z
    # ε = ∞: SURE of the separate estimator is (1/T) Σ d τ_t², exactly
    y = means[0]
    np.testing.assert_allclose(sure_curve(y, jnp.array([np.inf]), tau2)[0],
                               dim * float(np.mean(tau2)), rtol=1e-12)


def test_sure_curve_equals_the_pointwise_formula():
    y = jnp.asarray(np.random.default_rng(4).normal(size=(4, 2)) * 2)
    grid = jnp.linspace(0.0, 4.0, 9)  # from consensus to all tasks inside (θ = y)
    curve = sure_curve(y, grid, 0.7)
    divs = jax.jit(jax.vmap(divergence_autodiff, (None, 0)))(y, grid)
    thetas = jax.vmap(lambda e: project_centre_newton(y, e).task_params)(grid)
    fit = np.sum((np.asarray(thetas) - np.asarray(y)) ** 2, axis=2)
    expected = np.mean(fit - 2 * 0.7 + 2 * 0.7 * np.asarray(divs), axis=1)
    np.testing.assert_allclose(curve, expected, atol=1e-8)
    assert float(curve[-1]) == pytest.approx(1.4)  # all inside: div = d, SURE = d τ²


def test_fold_masks_partition_the_samples():
    mask = jnp.asarray(np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], float))
    held = np.asarray(fold_masks(mask, 3))
    np.testing.assert_array_equal(held.sum(0), mask)
    assert held.shape == (3, 3, 5)
    np.testing.assert_array_equal(held[:, 1].sum(1), [1, 1, 0])


def test_cv_curve_matches_a_plain_numpy_computation():
    rng = np.random.default_rng(3)
    t, n, d, k = 3, 6, 2, 3
    samples = rng.normal(size=(t, n, d)) + np.arange(t)[:, None, None]
    mask = np.ones((t, n))
    mask[1, 4:] = 0  # task 1 has 4 samples
    grid = np.array([0.0, 0.5, np.inf])
    got = np.asarray(cv_curve(jnp.asarray(samples), jnp.asarray(mask), jnp.asarray(grid), k))
    expected = []
    for eps in grid:
        total, count = 0.0, 0
        for fold in range(k):
            out = [[i for i in range(n) if mask[s, i] and i % k == fold] for s in range(t)]
            train = [[i for i in range(n) if mask[s, i] and i % k != fold] for s in range(t)]
            means = np.stack([samples[s, train[s]].mean(0) for s in range(t)])
            if eps == 0:
                theta = np.tile(means.mean(0), (t, 1))
            elif np.isinf(eps):
                theta = means
            else:
                theta = np.asarray(project_centre_newton(jnp.asarray(means), eps).task_params)
            for s in range(t):
                total += np.sum((samples[s, out[s]] - theta[s]) ** 2)
                count += len(out[s])
        expected.append(total / count)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    with pytest.raises(ValueError, match="folds"):
        cv_curve(jnp.asarray(samples), jnp.asarray(mask), jnp.asarray(grid), 1)


def test_select_takes_the_first_minimum():
    eps, idx = select(jnp.array([3.0, 1.0, 1.0, 2.0]), jnp.array([0.0, 0.5, 1.0, 1.5]))
    assert int(idx) == 1 and float(eps) == 0.5
