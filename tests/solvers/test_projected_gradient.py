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
