"""Primal-dual learning (Algorithm 2) on convex functional-constraint problems."""

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax.solvers._distances import l1_distance, softmax_l1_distance, squared_distance
from cljax.solvers._primal_dual import PrimalDual

jax.config.update("jax_enable_x64", True)

T, N, D = 4, 30, 3


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(T, N, D))
    theta = rng.normal(size=(T, D))
    Y = np.einsum("tnd,td->tn", X, theta) + 0.3 * rng.normal(size=(T, N))
    return X, Y


def linear(params, x):
    return x @ params


def squared_error(out, y):
    return (out - y) ** 2


def cvxpy_solution(X, Y, eps, distance):
    W, g = cp.Variable((T, D)), cp.Variable(D)
    objective = sum(cp.sum_squares(X[t] @ W[t] - Y[t]) / N for t in range(T)) / T
    if distance == "l1":
        cons = [cp.sum(cp.abs(X[t] @ (W[t] - g))) / N <= eps for t in range(T)]
    else:
        cons = [cp.sum_squares(X[t] @ (W[t] - g)) / N <= eps for t in range(T)]
    problem = cp.Problem(cp.Minimize(objective), cons)
    problem.solve(solver=cp.CLARABEL)
    return W.value, problem.value, np.array([c.dual_value for c in cons]).ravel()


def solve(regression, eps, distance, steps=20000):
    X, Y = regression
    pd = PrimalDual(linear, squared_error, optax.sgd(0.05), dual_step_size=0.5, distance=distance)
    return jax.jit(lambda e: pd.run(jnp.zeros((T, D)), (jnp.asarray(X), jnp.asarray(Y)), e,
                                    steps))(eps)


def test_primal_dual_reaches_saddle_point_with_smooth_distance(regression):
    eps = 0.3
    state, info = solve(regression, eps, squared_distance)
    W, value, duals = cvxpy_solution(*regression, eps, "squared")
    np.testing.assert_allclose(float(jnp.mean(info.loss[-1])), value, rtol=1e-6)
    np.testing.assert_allclose(state.task_params, W, atol=1e-4)
    np.testing.assert_allclose(state.duals, duals, atol=1e-4)
    assert float(jnp.max(info.slack[-1])) <= 1e-6


def test_primal_dual_meets_l1_constraint_within_tolerance(regression):
    eps = 0.3
    state, info = solve(regression, eps, l1_distance)
    _, value, _ = cvxpy_solution(*regression, eps, "l1")
    # subgradient oscillation: average the last iterates
    slack = np.asarray(jnp.mean(info.slack[-2000:], axis=0))
    assert np.all(slack <= 0.02 * eps)
    assert abs(float(jnp.mean(info.loss[-2000:])) - value) <= 0.02 * value
    assert np.all(np.asarray(state.duals) > 0)  # every constraint is active here


@pytest.mark.parametrize("distance", [l1_distance, squared_distance])
def test_duals_stay_zero_when_eps_is_large(regression, distance):
    X, Y = regression
    state, info = solve(regression, 100.0, distance, steps=5000)
    np.testing.assert_array_equal(state.duals, np.zeros(T))
    separate = np.stack([np.linalg.lstsq(X[t], Y[t], rcond=None)[0] for t in range(T)])
    np.testing.assert_allclose(state.task_params, separate, atol=1e-6)


def test_dual_update_is_projected_ascent_on_epoch_average():
    pd = PrimalDual(linear, squared_error, optax.sgd(0.0), dual_step_size=10.0)
    state = pd.init(jnp.zeros((2, 1)), 0.2)
    state = state._replace(constraint_sum=jnp.array([0.6, 0.1]), num_accumulated=jnp.array(2))
    updated = pd.dual_update(state, 0.2)
    # averages (0.3, 0.05): λ = [0 + 10 (0.3 − 0.2)]₊ = 1, [10 (0.05 − 0.2)]₊ = 0
    np.testing.assert_allclose(updated.duals, [1.0, 0.0], atol=1e-12)
    assert int(updated.num_accumulated) == 0


def test_dual_every_k_steps_updates_only_on_schedule(regression):
    X, Y = regression
    batch = (jnp.asarray(X), jnp.asarray(Y))
    pd = PrimalDual(linear, squared_error, optax.sgd(0.01), dual_every=3)
    state = pd.init(jnp.ones((T, D)), 0.0, jnp.zeros(D))
    duals = []
    for _ in range(6):
        state, info = pd.step(state, batch, 0.0)
        duals.append(np.asarray(info.duals))
    assert np.all(duals[0] == 0) and np.all(duals[1] == 0)
    assert np.all(duals[2] > 0)
    np.testing.assert_array_equal(duals[3], duals[2])
    assert np.all(duals[5] > duals[2])


def test_primal_dual_gradients_are_finite_when_task_equals_global(regression):
    X, Y = regression
    pd = PrimalDual(linear, squared_error, optax.sgd(0.1))
    state = pd.init(jnp.zeros((T, D)), 0.1, jnp.zeros(D), duals=jnp.ones(T))
    grads = jax.grad(lambda p: pd.lagrangian(p[0], p[1], state.duals,
                                             (jnp.asarray(X), jnp.asarray(Y)), 0.1)[0])(
        (state.task_params, state.global_params))
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


def test_softmax_l1_distance_is_bounded_and_zero_on_equal_logits():
    z = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    np.testing.assert_allclose(softmax_l1_distance(z, z), np.zeros(5))
    d = softmax_l1_distance(z, -z)
    assert np.all((d > 0) & (d <= 2))
    p, q = jax.nn.softmax(z), jax.nn.softmax(-z)
    np.testing.assert_allclose(d, np.abs(np.asarray(p - q)).sum(axis=1), rtol=1e-6)
