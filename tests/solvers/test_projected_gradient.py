"""Projected gradient (EUSIPCO Algorithm 1): feasibility and convergence to the P_CL optimum."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax.estimators._means import cross_learning
from cljax.solvers._projected_gradient import ProjectedGradient

jax.config.update("jax_enable_x64", True)


def squared_loss(theta, ybar):
    return jnp.sum((theta - ybar) ** 2)


@pytest.mark.parametrize("eps", [0.0, 0.8, 50.0])
def test_projected_gradient_converges_to_cross_learning_estimate(eps):
    ybar = jnp.asarray(np.random.default_rng(2).normal(size=(5, 2)) * 2.0)
    solver = ProjectedGradient(squared_loss, optax.sgd(0.1), global_weight=0.0)
    state, info = jax.jit(lambda e: solver.run(jnp.zeros_like(ybar), ybar, e, 300))(eps)
    np.testing.assert_allclose(state.task_params, cross_learning(ybar, eps), atol=1e-8)
    assert info.loss.shape == (300, 5)


def test_projected_gradient_iterates_are_feasible():
    ybar = jnp.asarray(np.random.default_rng(3).normal(size=(4, 3)) * 3.0)
    solver = ProjectedGradient(squared_loss, optax.adam(0.05), global_weight=1.0)
    state = solver.init(jnp.zeros_like(ybar), 0.5)
    step = jax.jit(solver.step)
    for _ in range(20):
        state, _ = step(state, ybar, 0.5)
        dist = np.linalg.norm(np.asarray(state.task_params - state.global_params[None]), axis=1)
        assert np.all(dist <= 0.5 * (1 + 1e-9) + 1e-12)


@pytest.mark.parametrize("global_weight", [1.0, 0.0])
def test_one_step_at_active_eps_is_projection_of_a_gradient_step(global_weight):
    """Issue 18 item 9: at an active ε the step is P_C(θ − η∇L), checked against an
    independent projection (CVXPY) of a gradient step computed in NumPy."""
    import cvxpy as cp

    rng = np.random.default_rng(4)
    ybar = rng.normal(size=(4, 2)) * 2.0
    theta0, glob0 = rng.normal(size=(4, 2)) * 0.1, np.zeros(2)
    eps, eta = 0.3, 0.1
    solver = ProjectedGradient(squared_loss, optax.sgd(eta), global_weight=global_weight)
    state = solver.init(jnp.asarray(theta0), eps, jnp.asarray(glob0))
    start_t, start_g = np.asarray(state.task_params), np.asarray(state.global_params)
    new, info = jax.jit(solver.step)(state, jnp.asarray(ybar), eps)
    moved = start_t - eta * 2.0 * (start_t - ybar)  # ∇ Σ (θ − ȳ)² = 2 (θ − ȳ)
    t, g = cp.Variable((4, 2)), cp.Variable(2)
    objective = cp.sum_squares(t - moved) + global_weight * cp.sum_squares(g - start_g)
    cons = [cp.norm(t[i] - g) <= eps for i in range(4)]
    cp.Problem(cp.Minimize(objective), cons).solve(solver=cp.CLARABEL)
    # the constraint is active: the gradient step alone leaves the set
    assert np.max(np.linalg.norm(moved - moved.mean(0), axis=1)) > eps
    np.testing.assert_allclose(new.task_params, t.value, atol=1e-5)
    if global_weight == 1.0:
        np.testing.assert_allclose(new.global_params, g.value, atol=1e-5)
    np.testing.assert_allclose(info.loss, np.sum((start_t - ybar) ** 2, axis=1), rtol=1e-12)


@pytest.mark.parametrize("num_steps", [2.5, -1, True])
def test_run_rejects_bad_num_steps(num_steps):
    solver = ProjectedGradient(squared_loss, optax.sgd(0.1))
    with pytest.raises((ValueError, TypeError), match="num_steps"):
        solver.run(jnp.zeros((3, 2)), jnp.ones((3, 2)), 0.5, num_steps)
