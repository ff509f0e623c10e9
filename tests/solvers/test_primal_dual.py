"""Primal-dual learning (Algorithm 2) on convex functional-constraint problems."""

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax.solvers._distances import l1_distance, softmax_l1_distance, squared_distance
from cljax.solvers._primal_dual import PrimalDual, PrimalDualState

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


# --- multiplier updates, augmented Lagrangian, residuals, bad input (issues 15, 17) ---

from cljax.solvers import (method_of_multipliers, nupi, nupi_ascent, optimistic_ascent,  # noqa: E402
                           paper_dual_ascent)


def test_nupi_matches_its_recursion_and_special_cases():
    errors = np.array([[0.5, -1.0], [0.2, 0.3], [-0.4, 0.1], [0.7, 0.7]])
    eta, kp, ki, nu = 0.3, 2.0, 0.5, 0.4
    opt = nupi(eta, kp, ki, nu)
    state = opt.init(jnp.zeros(2))
    xi_prev = errors[0]  # ξ_{-1} = e_0
    for e in errors:
        u, state = opt.update(jnp.asarray(e), state)
        xi = nu * xi_prev + (1 - nu) * e
        np.testing.assert_allclose(u, -eta * (ki * e + kp * (xi - xi_prev)), atol=1e-14)
        xi_prev = xi
    # K_P = 0: SGD; K_P = K_I = 1, ν = 0: optimistic, −η (2 e_k − e_{k−1}) after the first step
    for kp_, expect in ((0.0, lambda k: -eta * errors[k]),
                        (1.0, lambda k: -eta * (2 * errors[k] - errors[k - 1]))):
        opt, state = nupi(eta, kp_, 1.0, 0.0), None
        state = opt.init(jnp.zeros(2))
        for k, e in enumerate(errors):
            u, state = opt.update(jnp.asarray(e), state)
            if k > 0:
                np.testing.assert_allclose(u, expect(k), atol=1e-14)


@pytest.mark.parametrize("rule", [paper_dual_ascent(10.0), method_of_multipliers(10.0),
                                  nupi_ascent(10.0, kp=0.0), optimistic_ascent(10.0)],
                         ids=lambda r: r.name)
def test_every_dual_update_raises_violated_and_lowers_slack_multipliers(rule):
    # the first update of each is ascent with step 10 on ĝ − ε, projected onto λ ≥ 0
    pd = PrimalDual(linear, squared_error, optax.sgd(0.0), dual=rule)
    state = pd.init(jnp.zeros((3, 1)), 0.2, duals=jnp.array([0.0, 1.0, 1.0]))
    state = state._replace(constraint_sum=jnp.array([0.6, 0.1, 0.36]), num_accumulated=jnp.array(2))
    updated = pd.dual_update(state, 0.2)
    # averages (0.3, 0.05, 0.18): [0 + 10·0.1]₊ = 1, [1 − 10·0.15]₊ = 0, 1 − 10·0.02 = 0.8
    np.testing.assert_allclose(updated.duals, [1.0, 0.0, 0.8], atol=1e-12)


def test_augmented_lagrangian_gradient_is_lagrangian_gradient_at_lookahead_multiplier(regression):
    X, Y = regression
    batch = (jnp.asarray(X), jnp.asarray(Y))
    rho = 2.0
    al = PrimalDual(linear, squared_error, optax.sgd(0.1), distance=squared_distance,
                    dual=method_of_multipliers(rho))
    plain = PrimalDual(linear, squared_error, optax.sgd(0.1), distance=squared_distance,
                       dual=paper_dual_ascent(1.0))
    rng = np.random.default_rng(5)
    task, glob = jnp.asarray(rng.normal(size=(T, D))), jnp.asarray(rng.normal(size=D))
    duals = jnp.array([0.0, 0.5, 2.0, 0.1])
    _, g = al.task_terms(task, glob, batch)
    eps = float(g[0]) + 0.01  # task 0 (λ = 0) slack: look-ahead multiplier 0
    lookahead = np.maximum(np.asarray(duals) + rho * (np.asarray(g) - eps), 0.0)
    assert np.any(lookahead == 0) and np.any(lookahead > 0)  # both branches exercised
    grad_al = jax.grad(lambda p: al.lagrangian(p[0], p[1], duals, batch, eps)[0])((task, glob))
    grad_plain = jax.grad(lambda p: plain.lagrangian(p[0], p[1], jnp.asarray(lookahead), batch,
                                                     eps)[0])((task, glob))
    for a, b in zip(jax.tree_util.tree_leaves(grad_al), jax.tree_util.tree_leaves(grad_plain)):
        np.testing.assert_allclose(a, b, atol=1e-12)
    # value: (ρ/2)([s + λ/ρ]₊² − (λ/ρ)²) summed, from NumPy
    s = np.asarray(g) - eps
    lam = np.asarray(duals)
    losses, _ = al.task_terms(task, glob, batch)
    expected = float(np.mean(losses)) + np.sum(rho / 2 * (np.maximum(s + lam / rho, 0) ** 2
                                                          - (lam / rho) ** 2))
    np.testing.assert_allclose(al.lagrangian(task, glob, duals, batch, eps)[0], expected, rtol=1e-12)


def test_tol_freezes_at_a_kkt_point(regression):
    X, Y = regression
    pd = PrimalDual(linear, squared_error, optax.sgd(0.05), distance=squared_distance, tol=1e-7)
    state, info = jax.jit(lambda: pd.run(jnp.zeros((T, D)), (jnp.asarray(X), jnp.asarray(Y)),
                                         0.3, 4000))()
    assert bool(state.converged)
    stopped = int(state.iteration)
    assert 0 < stopped < 4000
    for r in (state.stationarity, state.violation, state.complementarity):
        assert float(r) <= 1e-7
    # frozen: the info after the stop repeats the stopping iterate
    np.testing.assert_array_equal(info.duals[-1], info.duals[stopped])
    # the KKT residuals, recomputed independently at the frozen point
    grads = jax.grad(lambda p: pd.lagrangian(p[0], p[1], state.duals, (jnp.asarray(X), jnp.asarray(Y)),
                                             0.3)[0])((state.task_params, state.global_params))
    assert float(sum(jnp.sum(g ** 2) for g in jax.tree_util.tree_leaves(grads))) ** 0.5 <= 2e-7


def test_state_without_dual_optimiser_state_still_steps(regression):
    """Callers that rebuild the state from its first 7 fields (the vision trainer) keep working."""
    X, Y = regression
    batch = (jnp.asarray(X), jnp.asarray(Y))
    pd = PrimalDual(linear, squared_error, optax.sgd(0.05), dual_every=1)
    full = pd.init(jnp.zeros((T, D)), 0.1)
    legacy = PrimalDualState(*full[:7])
    a, _ = pd.step(full, batch, 0.1)
    b, _ = pd.step(legacy, batch, 0.1)
    np.testing.assert_allclose(a.duals, b.duals)
    np.testing.assert_allclose(a.task_params, b.task_params)


@pytest.mark.parametrize("eps", [-1.0, float("nan")])
def test_dual_update_and_step_reject_bad_eps(regression, eps):
    X, Y = regression
    pd = PrimalDual(linear, squared_error, optax.sgd(0.05))
    state = pd.init(jnp.zeros((T, D)), 0.1)
    with pytest.raises(ValueError, match="eps"):
        pd.dual_update(state, eps)
    with pytest.raises(ValueError, match="eps"):
        pd.step(state, (jnp.asarray(X), jnp.asarray(Y)), eps)
    with pytest.raises(Exception, match="eps"):  # traced: equinox runtime error
        jax.jit(pd.dual_update)(state, jnp.asarray(eps))


@pytest.mark.parametrize("kwargs, match", [
    ({"dual_every": True}, "dual_every"), ({"dual_every": 0}, "dual_every"),
    ({"dual_every": 2.0}, "dual_every"), ({"tol": "x"}, "tol"), ({"tol": -1.0}, "tol"),
    ({"dual_step_size": 0.0}, "dual_step_size"),
    ({"dual_step_size": 1.0, "dual": paper_dual_ascent()}, "dual_step_size"),
])
def test_bad_options_are_rejected_at_construction(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PrimalDual(linear, squared_error, optax.sgd(0.05), **kwargs)


@pytest.mark.parametrize("num_steps", [2.5, -1, True, "3"])
def test_run_rejects_bad_num_steps(regression, num_steps):
    X, Y = regression
    pd = PrimalDual(linear, squared_error, optax.sgd(0.05))
    with pytest.raises((ValueError, TypeError), match="num_steps"):
        pd.run(jnp.zeros((T, D)), (jnp.asarray(X), jnp.asarray(Y)), 0.1, num_steps)


def test_dual_step_size_means_plain_ascent_and_the_default_is_the_method_of_multipliers():
    """Callers that pass η_D (the vision trainer, FunctionalCL) keep the paper's rule."""
    plain = PrimalDual(linear, squared_error, optax.sgd(0.1), dual_step_size=10.0).dual_rule
    default = PrimalDual(linear, squared_error, optax.sgd(0.1)).dual_rule
    assert plain.penalty == 0.0 and default.penalty == 1.0
    lam = jnp.array([0.5, 0.0])
    for rule, step in ((plain, 10.0), (default, 1.0)):
        u, _ = rule.optimizer.update(-jnp.array([0.1, -0.2]), rule.optimizer.init(lam), lam)
        np.testing.assert_allclose(u, step * np.array([0.1, -0.2]), atol=1e-12)
