"""Dual-encoder MTL (arXiv 2505.24281): group soft-threshold prox, orthogonality penalty, training."""

import dataclasses

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax import lax

from cljax.experiments.compare import problems
from cljax.methods import _dual_encoder as de

# Test-side computations go through jit: one compilation each instead of one per operation
# (eager op-by-op dispatch compiles every primitive for every new shape).
INIT = jax.jit(de.init_params, static_argnums=(1, 2, 3, 4))
PREDICT = jax.jit(de.predict, static_argnums=2)


def draw_regression(key, **kw):
    """``problems.heterogeneous_regression`` in one jitted program."""
    return jax.jit(lambda k: problems.heterogeneous_regression(k, **kw))(key)


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
    g = jax.jit(jax.grad(lambda v: jnp.sum(de.group_soft_threshold(v, c, 0.5) ** 2)))(v)
    assert np.all(np.isfinite(np.asarray(g)))


def test_orthogonality_penalty_value_and_gradient_vs_finite_differences():
    rng = np.random.default_rng(1)
    s, c = rng.normal(size=(7, 2)), rng.normal(size=(7, 3))
    sc, cc = s - s.mean(0), c - c.mean(0)
    penalty = jax.jit(de.orthogonality_penalty)  # one compilation per shape
    assert float(penalty(s, c)) == pytest.approx(np.sum((sc.T @ cc) ** 2) / 49, rel=1e-12)
    grad = np.asarray(jax.jit(jax.grad(de.orthogonality_penalty))(jnp.asarray(s), jnp.asarray(c)))
    h = 1e-6
    fd = np.zeros_like(s)
    for idx in np.ndindex(*s.shape):
        e = np.zeros_like(s)
        e[idx] = h
        fd[idx] = (float(penalty(s + e, c)) - float(penalty(s - e, c))) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    # orthogonal (centred) encodings cost nothing
    q = np.linalg.qr(rng.normal(size=(7, 5)) - 0)[0]
    q = q - q.mean(0)
    u = np.linalg.svd(np.c_[np.ones(7), q])[0][:, 1:6]  # columns ⟂ 1 and each other
    assert float(penalty(u[:, :2], u[:, 2:5])) == pytest.approx(0.0, abs=1e-20)


def test_weiszfeld_step_decreases_the_sum_of_distances():
    rng = np.random.default_rng(2)
    pts = jnp.asarray(rng.normal(size=(6, 3)))
    c = jnp.mean(pts, axis=0) + 1.0

    def cost(c):  # in NumPy
        return float(np.sum(np.linalg.norm(np.asarray(pts) - np.asarray(c), axis=1)))

    step = jax.jit(de.weiszfeld_step)
    before = cost(c)
    for _ in range(50):
        c_new = step(pts, c)
        assert cost(c_new) <= cost(c) + 1e-12
        c = c_new
    assert cost(c) < before


SMALL = de.DualEncoderConfig(hidden=(8,), num_steps=150)


@pytest.fixture(scope="module")
def small_problem():
    return draw_regression(jax.random.PRNGKey(0), num_tasks=3, num_samples=12, num_features=3)


def test_fit_is_deterministic_and_lowers_the_loss(small_problem):
    x, y = small_problem.x, small_problem.y
    fit = jax.jit(de.fit, static_argnums=3)
    p1, h1 = fit(jax.random.PRNGKey(1), x, y, SMALL)
    p2, _ = fit(jax.random.PRNGKey(1), x, y, SMALL)
    np.testing.assert_array_equal(np.asarray(PREDICT(p1, x, SMALL)),
                                  np.asarray(PREDICT(p2, x, SMALL)))
    assert float(h1[-1]) < 0.5 * float(h1[0])
    assert PREDICT(p1, x, SMALL).shape == y.shape


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


@pytest.mark.parametrize("tied", [False, True])
def test_head_steps_on_frozen_encoders_converge_to_least_squares(tied):
    """Frozen encoders: the head updates (λ = 0) solve least squares on the encodings.

    Untied: per task, y_r on [S_r, C_r, 1]; tied (pooled, shared encoder only):
    all tasks' y on [C, 1].  Reference: numpy lstsq.
    """
    prob = draw_regression(jax.random.PRNGKey(0), num_tasks=2, num_samples=40, num_features=3)
    x, y = prob.x, prob.y
    t, n = y.shape
    cfg = (de.DualEncoderConfig(hidden=(8,), shared_width=3, use_task=False, tie_heads=True)
           if tied else de.DualEncoderConfig(hidden=(8,), shared_width=3, lam_alpha=0.0,
                                             lam_beta=0.0))
    params = INIT(jax.random.PRNGKey(1), t, 3, cfg, x.dtype)
    s, c = jax.jit(de.encodings, static_argnums=2)(params, x, cfg)
    S, C, Y = np.asarray(s), np.asarray(c), np.asarray(y)
    if tied:
        designs = [np.c_[C.reshape(t * n, -1), np.ones(t * n)]]
        targets = [Y.reshape(-1)]
    else:
        designs = [np.c_[S[r], C[r], np.ones(n)] for r in range(t)]
        targets = list(Y)
    want = np.concatenate([a @ np.linalg.lstsq(a, b, rcond=None)[0]
                           for a, b in zip(designs, targets)]).reshape(t, n)
    # step 1/L, L the largest curvature of the data loss (1/(TN)) Σ (f − y)² in the heads
    lipschitz = max(2 / (t * n) * np.linalg.eigvalsh(a.T @ a).max() for a in designs)
    cfg = dataclasses.replace(cfg, head_step=1 / lipschitz)

    def body(p, _):
        return de.head_update(p, de.head_gradients(p, s, c, y, cfg), cfg), None

    fitted, _ = jax.jit(lambda p: lax.scan(body, p, None, length=20000))(params)
    np.testing.assert_allclose(jax.jit(de.predict_from_encodings, static_argnums=3)(
        fitted, s, c, cfg), want, atol=1e-8)
    if tied:
        np.testing.assert_allclose(fitted.beta, np.broadcast_to(fitted.beta[0], fitted.beta.shape))


def test_head_gradients_equal_the_full_gradient_in_the_heads(small_problem):
    x, y = small_problem.x, small_problem.y
    params = INIT(jax.random.PRNGKey(3), 3, 3, SMALL, x.dtype)

    @jax.jit
    def both(params):
        s, c = de.encodings(params, x, SMALL)
        return jax.grad(de.data_loss)(params, x, y, SMALL), de.head_gradients(params, s, c, y, SMALL)

    full, heads = both(params)
    for got, want in zip(heads, (full.alpha, full.beta, full.bias)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_heterogeneous_regression_noise_and_shift_are_as_stated():
    """y − f has standard deviation ``noise``; ‖m_r‖ = shift (x_r ~ N(m_r, I)).  Tolerances:
    4 sampling standard errors (‖m̂_r − m_r‖ ≈ √(p/N), s.d. of a sample s.d. ≈ s/√(2n))."""
    t, n, p, noise, shift = 4, 20000, 5, 0.3, 1.5
    kw = dict(num_tasks=t, num_samples=n, num_features=p, noise=noise, shift=shift)
    draw = jax.jit(lambda key: problems.heterogeneous_regression(key, **kw))
    prob = draw(jax.random.PRNGKey(0))
    assert prob.x.shape == (t, n, p) and prob.y.shape == prob.f.shape == (t, n)
    resid = np.asarray(prob.y - prob.f)
    assert np.std(resid) == pytest.approx(noise, rel=4 / np.sqrt(2 * t * n))
    assert abs(np.mean(resid)) < 4 * noise / np.sqrt(t * n)
    m_hat = np.asarray(prob.x).mean(axis=1)
    np.testing.assert_allclose(np.linalg.norm(m_hat, axis=1), shift, atol=4 * np.sqrt(p / n))
    again = draw(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(again.y), np.asarray(prob.y))
