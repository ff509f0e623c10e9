"""ADMM (Algorithm 1): exact solutions, schedules, residual history, jit and vmap."""

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax.solvers._admm import ADMM, authors_schedule
from cljax.estimators._means import cross_learning
from cljax.solvers._prox import LeastSquaresProx, OptaxProx, QuadraticProx

jax.config.update("jax_enable_x64", True)


def squared_loss(theta, ybar):
    return jnp.sum((theta - ybar) ** 2)


@pytest.fixture
def gaussian_means():
    return jnp.asarray(np.random.default_rng(0).normal(size=(6, 3)) * 2.0)


def gaussian_oracle(ybar, eps):
    t, s = ybar.shape
    theta, g = cp.Variable((t, s)), cp.Variable(s)
    cons = [cp.norm(theta - np.ones((t, 1)) @ cp.reshape(g, (1, s), order="C"), axis=1) <= eps]
    problem = cp.Problem(cp.Minimize(cp.sum_squares(theta - np.asarray(ybar))), cons)
    problem.solve(solver=cp.CLARABEL)
    return theta.value, problem.value


_GAUSSIAN_RUNS = {}


@pytest.mark.parametrize("prox", [
    QuadraticProx(squared_loss),
    LeastSquaresProx(lambda th, y: th - y, num_steps=5),
    OptaxProx(squared_loss, optax.sgd(0.05), num_steps=100),
], ids=["closed_form", "levenberg_marquardt", "optax"])
@pytest.mark.parametrize("eps", [0.0, 0.7, 3.0])
def test_admm_reaches_cvxpy_solution_of_gaussian_problem(gaussian_means, prox, eps):
    # one compiled run per prox, ε an argument (shared by the three ε cases)
    run = _GAUSSIAN_RUNS.setdefault(
        id(prox), jax.jit(lambda y, e: ADMM(prox).run(y, y, e, 300)))
    state, history = run(gaussian_means, jnp.asarray(eps))
    if eps > 0:  # interior-point solvers fail at eps = 0: closed form there
        expected, optimum = gaussian_oracle(gaussian_means, eps)
    else:
        expected = np.tile(np.mean(gaussian_means, axis=0), (6, 1))
        optimum = float(np.sum((expected - gaussian_means) ** 2))
    # Clarabel: objective to ~1e-9, variables to ~1e-5 (DESIGN §2)
    np.testing.assert_allclose(float(jnp.sum((state.task_params - gaussian_means) ** 2)), optimum, rtol=1e-6)
    np.testing.assert_allclose(state.task_params, expected, atol=1e-4)
    np.testing.assert_allclose(state.x, state.task_params, atol=1e-6)
    dist = np.linalg.norm(np.asarray(state.task_params - state.global_params[None]), axis=1)
    assert np.all(dist <= eps + 1e-9)
    assert history.primal_residual.shape == (300,)
    assert float(history.primal_residual[-1]) < 1e-6


def test_admm_solves_constrained_multitask_regression_exactly():
    rng = np.random.default_rng(3)
    t, n, d = 5, 8, 4
    X = rng.normal(size=(t, n, d))
    w_true = rng.normal(size=d) + 0.5 * rng.normal(size=(t, d))
    y = np.einsum("tnd,td->tn", X, w_true) + 0.1 * rng.normal(size=(t, n))

    def loss(w, data):
        x, target = data
        return jnp.mean((x @ w - target) ** 2)

    eps = 0.3
    state, _ = jax.jit(lambda e: ADMM(QuadraticProx(loss)).run(
        jnp.zeros((t, d)), (jnp.asarray(X), jnp.asarray(y)), e, 500))(eps)
    W, g = cp.Variable((t, d)), cp.Variable(d)
    objective = sum(cp.sum_squares(X[i] @ W[i] - y[i]) / n for i in range(t))
    cons = [cp.norm(W[i] - g) <= eps for i in range(t)]
    problem = cp.Problem(cp.Minimize(objective), cons)
    problem.solve(solver=cp.CLARABEL)
    ours = sum(float(jnp.mean((X[i] @ state.task_params[i] - y[i]) ** 2)) for i in range(t))
    np.testing.assert_allclose(ours, problem.value, rtol=1e-6)
    np.testing.assert_allclose(state.task_params, W.value, atol=1e-4)
    # KKT check, independent of the oracle's accuracy: the x-step optimum equals z
    np.testing.assert_allclose(state.x, state.task_params, atol=1e-7)


@pytest.mark.parametrize("rescale_dual", [True, False])
def test_authors_schedule_converges_and_shrinks_step(gaussian_means, rescale_dual):
    admm = ADMM(QuadraticProx(squared_loss), schedule=authors_schedule(),
                rescale_dual=rescale_dual)
    state, history = admm.run(gaussian_means, gaussian_means, 0.7, 200)
    np.testing.assert_allclose(history.step_size[8], 1.0)  # λ_9 before the first decay
    np.testing.assert_allclose(history.step_size[9], 0.9)  # λ_10 = 0.9
    np.testing.assert_allclose(history.step_size[-1], 0.9**20, rtol=1e-6)  # optax: float32
    np.testing.assert_allclose(state.task_params, cross_learning(gaussian_means, 0.7), atol=1e-6)


def test_admm_step_rescales_scaled_dual_when_penalty_changes(gaussian_means):
    schedule = lambda k: jnp.where(k >= 1, 0.5, 1.0)  # noqa: E731
    prox = QuadraticProx(squared_loss)
    for rescale in (True, False):
        admm = ADMM(prox, schedule=schedule, rescale_dual=rescale)
        s0 = admm.init(gaussian_means * 0, 0.5)
        s1, _ = admm.step(s0, gaussian_means, 0.5)
        unscaled, _ = ADMM(prox, schedule=1.0).step(s0, gaussian_means, 0.5)
        factor = 0.5 if rescale else 1.0
        np.testing.assert_allclose(s1.u, factor * unscaled.u, atol=1e-12)
        np.testing.assert_allclose(s1.step_size, 0.5)


def test_admm_vmapped_over_eps_matches_single_solves(gaussian_means):
    admm = ADMM(QuadraticProx(squared_loss))
    grid = jnp.array([0.0, 0.5, 1.5, 100.0])
    batched, _ = jax.jit(jax.vmap(lambda e: admm.run(gaussian_means, gaussian_means, e, 200)))(grid)
    single_solve = jax.jit(lambda e: admm.run(gaussian_means, gaussian_means, e, 200))
    for i, e in enumerate(grid):
        single, _ = single_solve(e)
        np.testing.assert_allclose(batched.task_params[i], single.task_params, atol=1e-10)
        np.testing.assert_allclose(batched.task_params[i], cross_learning(gaussian_means, e), atol=1e-6)


def test_admm_tolerance_freezes_converged_iterate(gaussian_means):
    admm = ADMM(QuadraticProx(squared_loss), tol=1e-8)
    state, history = admm.run(gaussian_means, gaussian_means, 0.7, 300)
    assert bool(state.converged)
    stopped = int(state.iteration)
    assert stopped < 300
    assert np.all(np.asarray(history.primal_residual[stopped:]) <= 1e-8)


def test_least_squares_prox_keeps_bounds_and_matches_bounded_optimum():
    # min (θ - y)² + ‖θ − v‖²/(2λ) with θ ≥ 0: the unconstrained optimum is negative.
    prox = LeastSquaresProx(lambda th, y: th - y, num_steps=30, lower=0.0)
    out = prox.solve(jnp.array([1.0, 1.0]), jnp.array([-1.0, 2.0]), 1.0, jnp.array([-3.0, 2.0]))
    # unconstrained: (2y + v/λ)/(2 + 1/λ) per coordinate → (-7/3, 2); clipped → (0, 2)
    np.testing.assert_allclose(out, [0.0, 2.0], atol=1e-8)


def test_quadratic_prox_is_exact_for_quadratic_loss():
    A = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    b = jnp.array([1.0, -1.0])
    loss = lambda th, _: 0.5 * th @ A @ th - b @ th  # noqa: E731
    v, lam = jnp.array([0.3, 0.2]), 0.7
    out = QuadraticProx(loss).solve(v, v, lam, None)
    expected = np.linalg.solve(np.asarray(A) + np.eye(2) / lam, np.asarray(b) + np.asarray(v) / lam)
    np.testing.assert_allclose(out, expected, atol=1e-12)


@pytest.mark.parametrize("schedule", [0.0, float("nan"), float("inf"), -1.0])
def test_bad_constant_schedule_is_rejected_naming_it(schedule):
    with pytest.raises(ValueError, match="schedule"):
        ADMM(QuadraticProx(squared_loss), schedule=schedule)


def test_schedule_reaching_zero_raises_instead_of_nan(gaussian_means):
    schedule = lambda k: jnp.where(k >= 3, 0.0, 1.0)  # noqa: E731
    admm = ADMM(QuadraticProx(squared_loss), schedule=schedule)
    with pytest.raises(Exception, match="schedule"):
        jax.block_until_ready(jax.jit(lambda d: admm.run(d, d, 0.5, 10))(gaussian_means))
    with pytest.raises(ValueError, match="schedule"):  # eager: at init, λ_0 = 0
        ADMM(QuadraticProx(squared_loss), schedule=lambda k: 0.0 * k).init(gaussian_means, 0.5)


@pytest.mark.parametrize("num_steps", [2.5, -1, True])
def test_run_rejects_bad_num_steps(gaussian_means, num_steps):
    with pytest.raises((ValueError, TypeError), match="num_steps"):
        ADMM(QuadraticProx(squared_loss)).run(gaussian_means, gaussian_means, 0.5, num_steps)
