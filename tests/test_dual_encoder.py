"""Dual-encoder MTL (arXiv 2505.24281): group soft-threshold prox, orthogonality penalty, training."""

import dataclasses

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax import dual_encoder as de


@pytest.mark.parametrize("threshold", [0.0, 0.3, 1.0, 50.0])
def test_group_soft_threshold_is_the_prox_cvxpy(threshold):
    rng = np.random.default_rng(0)
    v, c = rng.normal(size=(4, 3)), rng.normal(size=3)
    got = np.asarray(de.group_soft_threshold(jnp.asarray(v), jnp.asarray(c), threshold))
    for r in range(4):
        z = cp.Variable(3)
        cp.Problem(cp.Minimize(threshold * cp.norm(z - c) + 0.5 * cp.sum_squares(z - v[r]))).solve(
            solver=cp.CLARABEL)
        np.testing.assert_allclose(got[r], z.value, atol=1e-6)
        # closed form c + (v − c)(1 − t/‖v − c‖)₊
        d = v[r] - c
        want = c + d * max(0.0, 1 - threshold / np.linalg.norm(d))
        np.testing.assert_allclose(got[r], want, atol=1e-12)


def test_group_soft_threshold_at_the_centre_has_finite_gradient():
    c = jnp.array([1.0, -2.0])
    v = jnp.stack([c, c + 1.0])
    out = de.group_soft_threshold(v, c, 0.5)
    np.testing.assert_allclose(out[0], c)
    g = jax.grad(lambda v: jnp.sum(de.group_soft_threshold(v, c, 0.5) ** 2))(v)
    assert np.all(np.isfinite(np.asarray(g)))


def test_orthogonality_penalty_value_and_gradient_vs_finite_differences():
    rng = np.random.default_rng(1)
    s, c = rng.normal(size=(7, 2)), rng.normal(size=(7, 3))
    sc, cc = s - s.mean(0), c - c.mean(0)
    assert float(de.orthogonality_penalty(s, c)) == pytest.approx(
        np.sum((sc.T @ cc) ** 2) / 49, rel=1e-12)
    grad = np.asarray(jax.grad(de.orthogonality_penalty)(jnp.asarray(s), jnp.asarray(c)))
    h = 1e-6
    fd = np.zeros_like(s)
    for idx in np.ndindex(*s.shape):
        e = np.zeros_like(s)
        e[idx] = h
        fd[idx] = (float(de.orthogonality_penalty(s + e, c))
                   - float(de.orthogonality_penalty(s - e, c))) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    # orthogonal (centred) encodings cost nothing
    q = np.linalg.qr(rng.normal(size=(7, 5)) - 0)[0]
    q = q - q.mean(0)
    u = np.linalg.svd(np.c_[np.ones(7), q])[0][:, 1:6]  # columns ⟂ 1 and each other
    assert float(de.orthogonality_penalty(u[:, :2], u[:, 2:5])) == pytest.approx(0.0, abs=1e-20)


def test_weiszfeld_step_decreases_the_sum_of_distances():
    rng = np.random.default_rng(2)
    pts = jnp.asarray(rng.normal(size=(6, 3)))
    c = jnp.mean(pts, axis=0) + 1.0
    cost = lambda c: float(jnp.sum(jnp.linalg.norm(pts - c, axis=1)))  # noqa: E731
    before = cost(c)
    for _ in range(50):
        c_new = de.weiszfeld_step(pts, c)
        assert cost(c_new) <= cost(c) + 1e-12
        c = c_new
    assert cost(c) < before


SMALL = de.DualEncoderConfig(hidden=(8,), num_steps=150)


@pytest.fixture(scope="module")
def small_problem():
    return de.heterogeneous_regression(jax.random.PRNGKey(0), num_tasks=3, num_samples=12,
                                       num_features=3)


def test_fit_is_deterministic_and_lowers_the_loss(small_problem):
    x, y = small_problem.x, small_problem.y
    fit = jax.jit(de.fit, static_argnums=3)
    p1, h1 = fit(jax.random.PRNGKey(1), x, y, SMALL)
    p2, _ = fit(jax.random.PRNGKey(1), x, y, SMALL)
    np.testing.assert_array_equal(np.asarray(de.predict(p1, x, SMALL)),
                                  np.asarray(de.predict(p2, x, SMALL)))
    assert float(h1[-1]) < 0.5 * float(h1[0])
    assert de.predict(p1, x, SMALL).shape == y.shape


def test_tied_heads_and_strong_group_penalty_give_common_heads(small_problem):
    x, y = small_problem.x, small_problem.y
    fit = jax.jit(de.fit, static_argnums=3)
    tied = dataclasses.replace(SMALL, use_task=False, tie_heads=True)
    p, _ = fit(jax.random.PRNGKey(2), x, y, tied)
    np.testing.assert_allclose(p.beta, np.broadcast_to(p.beta[0], p.beta.shape), atol=1e-12)
    strong = dataclasses.replace(SMALL, lam_alpha=1e3, lam_beta=1e3)
    p, _ = fit(jax.random.PRNGKey(2), x, y, strong)
    # every head is thresholded onto its centre at every step
    np.testing.assert_allclose(p.alpha - p.alpha_centre, 0.0, atol=1e-6)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="use_task, use_shared"):
        de.DualEncoderConfig(use_task=False, use_shared=False)
    with pytest.raises(ValueError, match="lam_alpha"):
        de.DualEncoderConfig(lam_alpha=-1.0)
    with pytest.raises(ValueError, match="shape"):
        de.fit(jax.random.PRNGKey(0), jnp.zeros((2, 5, 3)), jnp.zeros((3, 5)), SMALL)
