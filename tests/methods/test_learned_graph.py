"""Learned task graph (arXiv 2510.10570): covariance, projection, pseudo-inverse, SGD."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.experiments.compare import problems
from cljax.methods import _learned_graph as lg
@pytest.mark.parametrize("k", [2, 3, 7])
def test_random_graph_is_a_connected_laplacian(k):
    lap = np.asarray(problems.random_graph_laplacian(jax.random.PRNGKey(k), k, 0.3))
    np.testing.assert_allclose(lap, lap.T)
    np.testing.assert_allclose(lap.sum(axis=1), 0.0, atol=1e-12)
    assert np.all(np.diag(lap) >= 1)
    evals = np.linalg.eigvalsh(lap)
    assert abs(evals[0]) < 1e-9 and evals[1] > 1e-6  # one zero eigenvalue: connected


def test_covariance_projection_and_pinv_match_numpy():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 40))
    s = w @ w.T / 40
    np.testing.assert_allclose(lg.feature_covariance(jnp.asarray(w)), s, rtol=1e-12)
    q = np.eye(6) - np.ones((6, 6)) / 6
    np.testing.assert_allclose(lg.project_off_ones(jnp.asarray(s)), q @ s @ q, atol=1e-12)
    np.testing.assert_allclose(lg.estimate_laplacian(jnp.asarray(w)),
                               np.linalg.pinv(q @ s @ q, hermitian=True), atol=1e-9)


def test_pinv_of_rank_deficient_covariance_matches_numpy():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 3))  # M = 3 < K − 1: QΣQ has rank 3
    s = w @ w.T / 3
    q = np.eye(6) - np.ones((6, 6)) / 6
    want = np.linalg.pinv(q @ s @ q, rcond=1e-10, hermitian=True)
    np.testing.assert_allclose(lg.pinv_off_ones(jnp.asarray(s), rcond=1e-10), want, atol=1e-8)


@pytest.mark.parametrize("k", [3, 8])
def test_whitened_gmrf_gives_back_the_laplacian(k):
    lap = problems.random_graph_laplacian(jax.random.PRNGKey(0), k, 0.4)
    w = problems.sample_gmrf(jax.random.PRNGKey(1), lap, 50, exact=True)
    np.testing.assert_allclose(lg.feature_covariance(w), np.linalg.pinv(np.asarray(lap)),
                               atol=1e-10)
    np.testing.assert_allclose(lg.estimate_laplacian(w), lap, atol=1e-8)
    np.testing.assert_allclose(np.sum(w, axis=0), 0.0, atol=1e-10)  # GMRF columns ⟂ 1


def test_gmrf_sample_covariance_converges():
    lap = problems.random_graph_laplacian(jax.random.PRNGKey(2), 5, 0.5)
    w = problems.sample_gmrf(jax.random.PRNGKey(3), lap, 40000)
    target = np.linalg.pinv(np.asarray(lap))
    err = np.linalg.norm(np.asarray(lg.feature_covariance(w)) - target) / np.linalg.norm(target)
    assert err < 0.03


def test_exact_gmrf_needs_enough_features():
    lap = problems.random_graph_laplacian(jax.random.PRNGKey(0), 6)
    with pytest.raises(ValueError, match="num_features >= K - 1"):
        problems.sample_gmrf(jax.random.PRNGKey(0), lap, 3, exact=True)


def test_steady_state_variance_of_elementwise_lms():
    """Empirical steady-state error variance vs P = μσ_v²/(2 − 3μσ_u²)."""
    mu, su, sv = 0.05, 1.5, 2.0
    w_true = jnp.zeros((1, 20000))
    grad = lg.vmapped_gradient(lg.elementwise_regression_grad(su, sv), w_true)
    w, _ = lg.run_sgd(grad, w_true, jax.random.PRNGKey(0), mu, 400)
    assert float(jnp.var(w)) == pytest.approx(float(lg.steady_state_variance(mu, su, sv)),
                                              rel=0.04)


@pytest.mark.parametrize("k", [4, 9])
def test_laplacian_error_is_first_order_in_the_covariance_bias(k):
    """Σ = L† + P·Q (the SGD bias) gives L̂ = (L† + PQ)† = L − P L² + O(P²): slope 1."""
    lap = np.asarray(problems.random_graph_laplacian(jax.random.PRNGKey(k), k, 0.4))
    pinv = np.linalg.pinv(lap)
    q = np.eye(k) - np.ones((k, k)) / k
    ps = np.array([1e-5, 1e-4, 1e-3])
    errs = np.array([float(lg.laplacian_error(lg.pinv_off_ones(jnp.asarray(pinv + p * q)),
                                              jnp.asarray(lap))) for p in ps])
    slope = np.polyfit(np.log(ps), np.log(errs), 1)[0]
    assert 0.99 <= slope <= 1.01
    first_order = ps * np.linalg.norm(lap @ lap) / np.linalg.norm(lap)
    np.testing.assert_allclose(errs, first_order, rtol=0.02)


def test_sgd_laplacian_matches_the_predicted_bias():
    """Non-cooperative SGD: L̂ ≈ (L† + P·Q)† with P the steady-state LMS variance."""
    k, m, mu, sv = 5, 4000, 0.01, 3.0
    lap = problems.random_graph_laplacian(jax.random.PRNGKey(4), k, 0.4)
    w_true = problems.sample_gmrf(jax.random.PRNGKey(5), lap, m, exact=True)
    grad = lg.vmapped_gradient(lg.elementwise_regression_grad(1.0, sv), w_true)
    w, _ = lg.run_sgd(grad, w_true, jax.random.PRNGKey(6), mu, 600)
    lap_hat = np.asarray(lg.estimate_laplacian(w))
    p = float(lg.steady_state_variance(mu, 1.0, sv))
    q = np.eye(k) - np.ones((k, k)) / k
    predicted = np.linalg.pinv(np.linalg.pinv(np.asarray(lap)) + p * q)
    bias = np.linalg.norm(predicted - np.asarray(lap))
    assert np.linalg.norm(lap_hat - predicted) < 0.2 * bias
    assert float(lg.laplacian_error(jnp.asarray(lap_hat), lap)) > 0.5 * bias / np.linalg.norm(lap)


def test_wiring_multitask_step_formula_and_consensus_step():
    """Wiring test: the step is the formula as written (a copy of it).  Correctness against an
    independent reference: the next test."""
    rng = np.random.default_rng(3)
    w, g, lap = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 4))
    np.testing.assert_allclose(lg.multitask_step(w, g, lap, 0.1, 2.0),
                               w - 0.1 * (g + 2.0 * lap @ w))
    np.testing.assert_allclose(lg.consensus_step(w, g, 0.1), w - 0.1 * g.mean(axis=0))


def test_multitask_and_consensus_steps_reach_their_closed_form_optima():
    """Quadratic agents f_k(w) = ½‖w − a_k‖² (gradient W − A): iterating the multitask step
    reaches argmin Σ_k f_k(w_k) + (η/2) tr(Wᵀ L W) = (I + η L)⁻¹ A, and the consensus step
    (from a common start) reaches the average of the a_k."""
    k, m, eta = 5, 3, 0.7
    lap = np.asarray(problems.random_graph_laplacian(jax.random.PRNGKey(8), k, 0.4))
    a = np.random.default_rng(9).normal(size=(k, m))
    mu = 1.0 / (1.0 + eta * np.linalg.eigvalsh(lap).max())

    def run(step):
        return jax.jit(lambda w: jax.lax.fori_loop(0, 2000, lambda _, w: step(w), w))(
            jnp.zeros((k, m)))

    multitask = run(lambda w: lg.multitask_step(w, w - a, lap, mu, eta))
    np.testing.assert_allclose(multitask, np.linalg.solve(np.eye(k) + eta * lap, a), atol=1e-10)
    consensus = run(lambda w: lg.consensus_step(w, w - a, 0.5))
    np.testing.assert_allclose(consensus, np.broadcast_to(a.mean(axis=0), (k, m)), atol=1e-10)


def test_learned_graph_regression_without_coupling_is_ridge_least_squares():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 30, 4))
    y = rng.normal(size=(3, 30))
    w, lap = lg.fit_learned_graph_regression(jnp.asarray(x), jnp.asarray(y), 0.0,
                                             num_steps=3000, ridge=1e-3)
    for t in range(3):
        want = np.linalg.solve(x[t].T @ x[t] / 30 + 1e-3 * np.eye(4), x[t].T @ y[t] / 30)
        np.testing.assert_allclose(w[t], want, atol=1e-6)
    np.testing.assert_allclose(np.asarray(lap) @ np.ones(3), 0.0, atol=1e-8)


def test_coupling_shrinks_toward_graph_smooth_solution():
    """η → large pulls every task to a common vector (L̂ W → 0 on a connected L̂)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 20, 5))
    y = rng.normal(size=(4, 20))
    w0, _ = lg.fit_learned_graph_regression(jnp.asarray(x), jnp.asarray(y), 0.0)
    w1, _ = lg.fit_learned_graph_regression(jnp.asarray(x), jnp.asarray(y), 100.0,
                                            num_steps=3000)
    spread = lambda w: float(np.linalg.norm(w - w.mean(axis=0)))  # noqa: E731
    assert spread(np.asarray(w1)) < 0.2 * spread(np.asarray(w0))


def _two_phase_gradient_descent(x, y, coupling, mu1, mu2_fn, num_steps, ridge):
    """numpy reference of fit_learned_graph_regression (mu2_fn(L̂) gives phase 2's step)."""
    k, n, m = x.shape
    w = np.zeros((k, m))
    grad = lambda w: np.einsum("kni,kn->ki", x, np.einsum("kni,ki->kn", x, w) - y) / n + ridge * w  # noqa: E731
    for _ in range(num_steps):
        w = w - mu1 * grad(w)
    q = np.eye(k) - np.ones((k, k)) / k
    lap = q @ np.linalg.pinv(q @ (w @ w.T / m) @ q, hermitian=True) @ q
    mu2 = mu2_fn(lap)
    for _ in range(num_steps):
        w = w - mu2 * (grad(w) + coupling * lap @ w)
    return w, lap


@pytest.mark.parametrize("step_size", [None, 0.05])
def test_wiring_learned_graph_regression_step_size_matches_numpy_transcription(step_size):
    """Wiring test: a NumPy transcription of the same two-phase algorithm, step for step (a
    given step size is used in both phases; by default each phase has its own 1/λ_max).
    Correctness against an independent reference: the next test."""
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(3, 10, 4)), rng.normal(size=(3, 10))
    ridge, eta = 1e-3, 0.5
    lmax = max(np.linalg.eigvalsh(x[k].T @ x[k] / 10).max() for k in range(3)) + ridge
    mu1 = 1 / lmax if step_size is None else step_size
    mu2_fn = ((lambda lap: 1 / (lmax + eta * np.linalg.eigvalsh(lap).max()))
              if step_size is None else (lambda lap: step_size))
    want, want_lap = _two_phase_gradient_descent(x, y, eta, mu1, mu2_fn, 40, ridge)
    got, lap = lg.fit_learned_graph_regression(jnp.asarray(x), jnp.asarray(y), eta,
                                               step_size=step_size, num_steps=40, ridge=ridge)
    np.testing.assert_allclose(lap, want_lap, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_learned_graph_regression_reaches_the_closed_form_optimum():
    """Independent reference (no gradient descent): after enough steps, phase 1 is each task's
    ridge least squares w_k = (X_kᵀX_k/N + ρI)⁻¹ X_kᵀy_k/N; L̂ = (Q (W Wᵀ/M) Q)† by NumPy's
    pinv; phase 2 solves the linear system of
    Σ_k [(1/2N)‖X_k w_k − y_k‖² + (ρ/2)‖w_k‖²] + (η/2) tr(Wᵀ L̂ W):
    (blockdiag(X_kᵀX_k/N + ρI) + η L̂ ⊗ I) vec(W) = vec(X_kᵀ y_k / N)."""
    rng = np.random.default_rng(10)
    k, n, m, ridge, eta = 3, 30, 4, 1e-3, 0.5
    x, y = rng.normal(size=(k, n, m)), rng.normal(size=(k, n))
    got, lap = lg.fit_learned_graph_regression(jnp.asarray(x), jnp.asarray(y), eta,
                                               num_steps=4000, ridge=ridge)
    hess = [x[t].T @ x[t] / n + ridge * np.eye(m) for t in range(k)]
    rhs = np.stack([x[t].T @ y[t] / n for t in range(k)])
    w1 = np.stack([np.linalg.solve(hess[t], rhs[t]) for t in range(k)])
    q = np.eye(k) - np.ones((k, k)) / k
    want_lap = np.linalg.pinv(q @ (w1 @ w1.T / m) @ q, hermitian=True)
    np.testing.assert_allclose(lap, want_lap, rtol=1e-7, atol=1e-8)
    system = np.zeros((k * m, k * m))
    for t in range(k):
        system[t * m:(t + 1) * m, t * m:(t + 1) * m] = hess[t]
    system += eta * np.kron(want_lap, np.eye(m))
    want = np.linalg.solve(system, rhs.reshape(-1)).reshape(k, m)
    np.testing.assert_allclose(got, want, atol=1e-8)
    assert np.linalg.norm(want - w1) > 1e-2  # the coupling matters here


def test_random_graph_laplacian_uses_the_default_float_dtype():
    assert problems.random_graph_laplacian(jax.random.PRNGKey(0), 4).dtype == jnp.float64  # x64 tests
    with jax.enable_x64(False):
        assert problems.random_graph_laplacian(jax.random.PRNGKey(0), 4).dtype == jnp.float32
    assert problems.random_graph_laplacian(jax.random.PRNGKey(0), 4, dtype=jnp.float32).dtype == \
        jnp.float32
