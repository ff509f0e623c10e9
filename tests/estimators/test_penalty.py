"""The penalty family P_μ: min Σ L_t(θ_t) + Σ (μ_t/2)‖θ_t − θ_g‖², and its duality with
cross-learning (issue 16, part 4).

References: the (T+1)p × (T+1)p normal equations solved by NumPy; CVXPY (Clarabel) for
the constrained problem with squared constraints ‖θ_t − θ_g‖² ≤ ε² and its duals λ_t*.
"""

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax.estimators import (penalty_descent, penalty_least_squares, penalty_means,
                              projection_multipliers)
from cljax.projection import project_cross_learning

# one compilation per function and shape (the tests reuse T = 4 throughout)
LEAST_SQUARES = jax.jit(penalty_least_squares, static_argnames="ridge")
MEANS = jax.jit(penalty_means)


def block_solve(a, b, mu):
    """NumPy: stationarity of Σ (θᵀA_tθ − 2b_tᵀθ) + Σ μ_t/2 ‖θ_t − θ_g‖² (finite μ, Σμ > 0)."""
    t, p = b.shape
    n = (t + 1) * p
    h, r = np.zeros((n, n)), np.zeros(n)
    g = slice(t * p, n)
    for k in range(t):
        s = slice(k * p, (k + 1) * p)
        h[s, s] += 2 * a[k] + mu[k] * np.eye(p)
        h[s, g] -= mu[k] * np.eye(p)
        h[g, s] -= mu[k] * np.eye(p)
        h[g, g] += mu[k] * np.eye(p)
        r[s] = 2 * b[k]
    z = np.linalg.solve(h, r)
    return z[:t * p].reshape(t, p), z[t * p:]


def normal_terms(x, y, v, ridge):
    a = np.einsum("tnp,tn,tnq->tpq", x, v, x) / v.sum(1)[:, None, None] + ridge * np.eye(x.shape[2])
    b = np.einsum("tnp,tn,tn->tp", x, v, y) / v.sum(1)[:, None]
    return a, b


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(3)
    t, n, p = 4, 7, 3
    x = rng.normal(size=(t, n, p))
    y = np.einsum("tnp,tp->tn", x, rng.normal(size=(t, p))) + 0.3 * rng.normal(size=(t, n))
    v = np.ones((t, n))
    v[:, ::3] = 0.0  # a held-out fold
    return x, y, v


def test_least_squares_matches_block_normal_equations(regression):
    x, y, v = regression
    mu = np.array([0.3, 2.0, 0.0, 11.0])  # one task uncoupled
    theta, centre = LEAST_SQUARES(x, y, mu, v, ridge=0.05)
    ref_theta, ref_centre = block_solve(*normal_terms(x, y, v, 0.05), mu)
    np.testing.assert_allclose(theta, ref_theta, atol=1e-10)
    np.testing.assert_allclose(centre, ref_centre, atol=1e-10)


def test_least_squares_limits(regression):
    x, y, v = regression
    a, b = normal_terms(x, y, v, 0.0)
    theta0, _ = LEAST_SQUARES(x, y, np.zeros(4), v, ridge=0.0)  # separate
    np.testing.assert_allclose(theta0, np.linalg.solve(a, b[..., None])[..., 0], atol=1e-10)
    theta_inf, centre = LEAST_SQUARES(x, y, np.full(4, np.inf), v, ridge=0.0)  # consensus: Σ A_t θ = Σ b_t
    pooled = np.linalg.solve(a.sum(0), b.sum(0))
    np.testing.assert_allclose(centre, pooled, atol=1e-10)
    np.testing.assert_allclose(theta_inf, np.broadcast_to(pooled, theta_inf.shape), atol=1e-10)


def test_means_closed_form_and_limits():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(4, 2))
    w = np.array([1.0, 2.0, 0.5, 3.0])
    mu = np.array([0.4, 2.5, 0.0, 7.0])
    theta, centre = MEANS(y, mu, w)
    # L_t = w_t ‖θ − y_t‖² is θᵀ(w_t I)θ − 2 (w_t y_t)ᵀθ + c
    ref_theta, ref_centre = block_solve(w[:, None, None] * np.eye(2), w[:, None] * y, mu)
    np.testing.assert_allclose(theta, ref_theta, atol=1e-12)
    np.testing.assert_allclose(centre, ref_centre, atol=1e-12)
    ones = np.ones(4)
    np.testing.assert_allclose(MEANS(y, np.zeros(4), ones)[0], y, atol=0)
    np.testing.assert_allclose(MEANS(y, np.full(4, np.inf), ones)[0],
                               np.broadcast_to(y.mean(0), y.shape), atol=1e-15)
    low = MEANS(y.astype(np.float32), mu.astype(np.float32), w.astype(np.float32))[0]
    assert low.dtype == jnp.float32
    np.testing.assert_allclose(low, ref_theta, atol=1e-5)
    mixed = jnp.array([0.0, 1.0, jnp.inf, 2.0])
    grads = jax.jit(jax.grad(lambda m: jnp.sum(penalty_means(m, mixed)[0] ** 2)))(jnp.asarray(y))
    assert np.all(np.isfinite(grads))


def test_descent_matches_exact_solution(regression):
    x, y, v = regression
    mu = np.array([0.5, 1.0, 2.0, 4.0])

    def loss(theta, data):
        xt, yt, vt = data
        return jnp.sum(vt * (xt @ theta - yt) ** 2) / jnp.sum(vt)

    theta, centre, history = penalty_descent(loss, jnp.zeros((4, 3)), (x, y, v), mu, 1500,
                                             optax.sgd(0.1))
    ref_theta, ref_centre = LEAST_SQUARES(x, y, mu, v, ridge=0.0)
    np.testing.assert_allclose(theta, ref_theta, atol=1e-6)
    np.testing.assert_allclose(centre, ref_centre, atol=1e-6)
    assert np.all(np.diff(np.asarray(history)) <= 1e-12)  # monotone at this step


def test_bad_mu_is_named():
    y = np.zeros((3, 2))
    with pytest.raises(ValueError, match="mu must be a scalar or have shape \\(3,\\)"):
        penalty_means(y, np.ones(2))
    with pytest.raises(ValueError, match="mu must be >= 0"):
        penalty_means(y, -1.0)


# ---------------------------------------------------------------------------
# Duality: constrained (‖θ_t − θ_g‖² ≤ ε²) against penalised with μ_t = 2 λ_t*(ε).

def constrained_cvxpy(y, eps):
    t, d = y.shape
    theta, centre = cp.Variable((t, d)), cp.Variable(d)
    cons = [cp.sum_squares(theta[k] - centre) <= eps**2 for k in range(t)]
    cp.Problem(cp.Minimize(cp.sum_squares(theta - y)), cons).solve(
        solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    return theta.value, np.array([float(np.ravel(c.dual_value)[0]) for c in cons])


@jax.jit
def _duality(y, eps):
    """The projection, its multipliers, P_μ at μ_t = 2λ_t, and the best single μ's gap."""
    proj = project_cross_learning(y, None, eps, global_weight=0.0, tol=1e-14)
    lam = projection_multipliers(y, proj.global_params, eps)
    theta = penalty_means(y, 2.0 * lam)[0]
    grid = jnp.logspace(-3, 3, 4001)
    gaps = jax.vmap(lambda m: jnp.max(jnp.abs(penalty_means(y, m)[0] - proj.task_params)))(grid)
    single = penalty_means(y, 2.0 * lam[0])[0]
    return proj.task_params, lam, theta, jnp.min(gaps), single


def duality_case(y, eps):
    projected, lam, theta, gap, single = _duality(jnp.asarray(y), eps)
    ref_theta, ref_lam = constrained_cvxpy(y, eps)
    np.testing.assert_allclose(projected, ref_theta, atol=1e-5)  # the oracle's accuracy
    np.testing.assert_allclose(lam, ref_lam, atol=1e-4)  # Clarabel duals: ~4e-5 here
    np.testing.assert_allclose(theta, projected, atol=1e-6)  # μ_t = 2λ_t*: the same solution
    return np.asarray(lam), float(gap), np.asarray(single), np.asarray(projected)


def test_duality_symmetric_case_single_mu_matches():
    y = 2.0 * np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # Example 2 centres
    lam, gap, single, projected = duality_case(y, 0.8)
    np.testing.assert_allclose(lam, 1.5, rtol=1e-9)  # equal multipliers, 2/0.8 − 1 = 1.5
    np.testing.assert_allclose(single, projected, atol=1e-6)  # one scalar μ = 2λ = 3
    assert gap <= 1e-3  # the grid's resolution around μ = 3


def test_duality_asymmetric_case_no_single_mu():
    y = np.array([[3.0, 0.5], [-1.0, 0.2], [0.2, 1.4], [0.5, -2.5]])
    lam, gap, _, _ = duality_case(y, 0.9)
    assert np.ptp(lam) > 0.5  # unequal multipliers
    assert gap > 0.05  # far above the 1e-6 of μ_t = 2λ_t
