"""Centre-space Newton for P̄_CL (w_g = 0): against the general projection and CVXPY, limits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.projection._centre_newton import project_centre_newton
from cljax.projection._operator import project_cross_learning

CASES = [(4, 2), (3, 1), (6, 10), (1, 2)]  # T = 1, S = 1 and S > T among them


def objective(theta, points, weights):
    return np.sum(np.asarray(weights)[..., None] * (np.asarray(theta) - np.asarray(points)) ** 2,
                  axis=(-2, -1))


@pytest.mark.parametrize("tasks,dim", CASES)
def test_matches_general_projection_over_an_eps_grid(tasks, dim):
    rng = np.random.default_rng(tasks * 10 + dim)
    points = jnp.asarray(rng.normal(size=(40, tasks, dim)) * 2.0)
    weights = jnp.asarray(rng.uniform(0.5, 2.0, size=tasks))
    grid = jnp.concatenate([jnp.linspace(0.0, 6.0, 25), jnp.array([np.inf])])
    ours = jax.jit(jax.vmap(jax.vmap(project_centre_newton, (None, 0, None)),
                            (0, None, None)))(points, grid, weights)
    # weights passed as an argument (traced): checks.check_weights cannot take a
    # concrete array closed over inside jit
    ref = jax.jit(jax.vmap(jax.vmap(
        lambda p, e, w: project_cross_learning(p, None, e, task_weights=w, global_weight=0.0,
                                               max_iter=200), (None, 0, None)),
        (0, None, None)))(points, grid, weights)
    f_ours = objective(ours.task_params, points[:, None], weights)
    f_ref = objective(ref.task_params, points[:, None], weights)
    # feasible, and never worse than the general solver's objective (up to rounding)
    dist = np.linalg.norm(np.asarray(ours.task_params) - np.asarray(ours.centre)[:, :, None], axis=-1)
    assert np.all(dist <= np.asarray(grid)[None, :, None] + 1e-9)
    assert np.all(f_ours <= f_ref * (1 + 1e-9) + 1e-12)
    # the minimiser is unique in θ; the general solver stops at tol √eps, so 1e-5
    np.testing.assert_allclose(ours.task_params, ref.task_params, atol=1e-5)


def test_matches_cvxpy_tight():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(5)
    for tasks, dim, eps in [(4, 2, 0.8), (5, 3, 1.5), (10, 2, 0.3), (4, 2, 2.5)]:
        a = rng.normal(size=(tasks, dim)) * 2.0
        theta, c = cp.Variable((tasks, dim)), cp.Variable(dim)
        cons = [cp.norm(theta[t] - c) <= eps for t in range(tasks)]
        prob = cp.Problem(cp.Minimize(cp.sum_squares(theta - a)), cons)
        prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
        ours = project_centre_newton(jnp.asarray(a), eps)
        assert objective(ours.task_params, a, np.ones(tasks)) == pytest.approx(prob.value, abs=1e-8)
        np.testing.assert_allclose(ours.task_params, theta.value, atol=1e-5)


def test_limits_are_exact():
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(size=(5, 2)))
    w = jnp.array([1.0, 2.0, 1.0, 3.0, 0.5])
    zero = project_centre_newton(a, 0.0, w).task_params
    mean = np.sum(np.asarray(a) * np.asarray(w)[:, None], 0) / float(np.sum(w))
    np.testing.assert_allclose(zero, np.tile(mean, (5, 1)), atol=1e-14)
    assert np.array_equal(np.asarray(project_centre_newton(a, np.inf).task_params), np.asarray(a))
    assert np.array_equal(np.asarray(project_centre_newton(a, 50.0).task_params), np.asarray(a))


def test_degenerate_inputs():
    one = jnp.array([[1.0, -2.0]])
    for eps in [0.0, 0.5, np.inf]:
        np.testing.assert_array_equal(project_centre_newton(one, eps).task_params, one)
    same = jnp.ones((4, 3))
    for eps in [0.0, 1.0]:
        out = project_centre_newton(same, eps)
        assert np.all(np.isfinite(out.task_params))
        np.testing.assert_allclose(out.task_params, same)
    # a point exactly at the mean (its distance is 0): finite values and gradients
    pts = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    g = jax.grad(lambda p: jnp.sum(project_centre_newton(p, 0.3).task_params ** 2))(pts)
    assert np.all(np.isfinite(g))


def test_float32_and_bad_inputs():
    a = jnp.asarray(np.random.default_rng(1).normal(size=(4, 2)), jnp.float32)
    out = project_centre_newton(a, 0.5)
    assert out.task_params.dtype == jnp.float32
    ref = project_centre_newton(a.astype(jnp.float64), 0.5).task_params
    np.testing.assert_allclose(out.task_params, ref, atol=2e-5)
    with pytest.raises(ValueError, match="points"):
        project_centre_newton(jnp.ones(3), 0.5)
    with pytest.raises(ValueError, match="weights"):
        project_centre_newton(jnp.ones((3, 2)), 0.5, jnp.ones(2))
    with pytest.raises(ValueError, match="iterations"):
        project_centre_newton(jnp.ones((3, 2)), 0.5, iterations=-1)
    with pytest.raises(TypeError, match="floating"):
        project_centre_newton(jnp.ones((3, 2), jnp.int32), 0.5)
