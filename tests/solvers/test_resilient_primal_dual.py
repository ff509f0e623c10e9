"""Resilient constraints in PrimalDual (Hounie et al. 2023; issue 16, part 3) against CVXPY.

The resilient problem min Σ_t L_t(θ_t) + Σ_t α u_t²/2 s.t. ‖θ_t − θ_g‖² ≤ ε² + u_t is
convex (Gaussian means and least squares); Clarabel solves it with θ, θ_g and u as
variables and gives the multipliers λ_t.  The solver's θ, u and λ are compared with it,
and h'(u_t) = α u_t = λ_t is checked on the oracle's own u and λ as well as on the
solver's realised relaxation ‖θ_t − θ_g‖² − ε².
"""

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax.estimators import resilient_least_squares, resilient_means
from cljax.solvers import PrimalDual, squared_distance

MEANS = jax.jit(resilient_means, static_argnames="num_steps")
LEAST_SQUARES = jax.jit(resilient_least_squares, static_argnames=("ridge", "num_steps"))


def resilient_cvxpy(loss_terms, t, p, alpha, eps):
    theta, centre, u = cp.Variable((t, p)), cp.Variable(p), cp.Variable(t)
    cons = [cp.sum_squares(theta[k] - centre) <= eps**2 + u[k] for k in range(t)]
    objective = loss_terms(theta) + alpha / 2 * cp.sum_squares(u)
    cp.Problem(cp.Minimize(objective), cons).solve(solver="CLARABEL", tol_gap_abs=1e-9,
                                                   tol_gap_rel=1e-9, tol_feas=1e-9)
    lam = np.array([float(np.ravel(c.dual_value)[0]) for c in cons])
    return theta.value, centre.value, u.value, lam


def check_against(theta, centre, u, lam, ref, alpha, eps):
    ref_theta, ref_centre, ref_u, ref_lam = ref
    np.testing.assert_allclose(theta, ref_theta, atol=1e-4)
    np.testing.assert_allclose(centre, ref_centre, atol=1e-4)
    np.testing.assert_allclose(u, ref_u, atol=1e-4)
    np.testing.assert_allclose(lam, ref_lam, atol=1e-4)
    np.testing.assert_allclose(alpha * ref_u, ref_lam, atol=1e-5)  # h'(u) = λ at the saddle
    realised = np.sum((np.asarray(theta) - np.asarray(centre)) ** 2, axis=1) - eps**2
    active = np.asarray(lam) > 1e-3
    assert active.any()
    np.testing.assert_allclose(alpha * realised[active], np.asarray(lam)[active], atol=1e-4)


@pytest.mark.parametrize("alpha, eps", [(0.5, 0.0), (2.0, 0.6)])
def test_resilient_means_matches_cvxpy(alpha, eps):
    rng = np.random.default_rng(1)
    y = 2.0 * rng.normal(size=(5, 2))
    y[0] += 5.0  # an outlying task gets the largest relaxation
    ref = resilient_cvxpy(lambda th: cp.sum_squares(th - y), 5, 2, alpha, eps)
    theta, centre, u, lam = MEANS(jnp.asarray(y), alpha, eps, num_steps=3000)
    check_against(theta, centre, u, lam, ref, alpha, eps)
    assert int(np.argmax(u)) == 0


def test_resilient_least_squares_matches_cvxpy():
    rng = np.random.default_rng(2)
    t, n, p = 4, 12, 3
    x = rng.normal(size=(t, n, p))
    y = np.einsum("tnp,tp->tn", x, 1.5 * rng.normal(size=(t, p))) + 0.5 * rng.normal(size=(t, n))
    v = np.ones((t, n))
    v[:, ::3] = 0.0  # a held-out fold
    ridge, alpha, eps = 0.01, 2.0, 0.5

    def loss(th):
        return sum(cp.sum(cp.multiply(v[k], cp.square(x[k] @ th[k] - y[k]))) / v[k].sum()
                   + ridge * cp.sum_squares(th[k]) for k in range(t))

    ref = resilient_cvxpy(loss, t, p, alpha, eps)
    out = LEAST_SQUARES(jnp.asarray(x), jnp.asarray(y), alpha, eps, jnp.asarray(v), ridge=ridge,
                        num_steps=3000)
    check_against(*out, ref, alpha, eps)


def test_plain_ascent_with_resilience_reaches_the_saddle():
    """ρ = 0 (the paper's plain ascent on the relaxed constraint) with PrimalDual directly."""
    rng = np.random.default_rng(4)
    y = rng.normal(size=(3, 2))
    alpha = 1.0
    ref = resilient_cvxpy(lambda th: cp.sum_squares(th - y) / 3, 3, 2, alpha, 0.0)

    def apply_fn(theta, x):
        return jnp.broadcast_to(theta, (x.shape[0],) + theta.shape)

    def loss_fn(out, target):
        return jnp.sum((out - target) ** 2, axis=-1)

    solver = PrimalDual(apply_fn, loss_fn, optax.sgd(0.05), dual_step_size=0.2,
                        distance=squared_distance, dual_every=1, resilience=alpha)
    data = (jnp.zeros((3, 1, 1)), jnp.asarray(y)[:, None, :])
    state, info = jax.jit(lambda: solver.run(jnp.asarray(y), data, 0.0, 3000))()
    u = solver.relaxation(state.duals)
    check_against(state.task_params, state.global_params, u, state.duals, ref, alpha, 0.0)
    assert float(info.violation[-1]) <= 1e-6 and float(info.complementarity[-1]) <= 1e-6


def test_resilience_must_be_positive():
    with pytest.raises(ValueError, match="resilience must be finite and > 0"):
        PrimalDual(lambda p, x: x, lambda o, y: o, optax.sgd(0.1), resilience=0.0)
