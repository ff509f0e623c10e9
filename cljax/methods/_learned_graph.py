"""Multitask learning with a learned task graph (arXiv 2510.10570; DESIGN §7).

K agents (tasks), agent k with parameters w_k ∈ R^M, stacked as W (K × M).  The
task parameters are modelled as a Gaussian Markov random field over an unknown
graph, W_o ~ N(0, L† ⊗ I_M): every feature column w^(m) ∈ R^K is an independent
draw with precision the graph Laplacian L.  The strategy:

1. Non-cooperative SGD, each agent alone:  w_k ← w_k − μ ∇̃J_k(w_k).
2. Covariance across feature dimensions:  Σ̂ = W Wᵀ / M                (K × K).
3. Projection off the all-ones vector:     Σ̂⊥ = Q Σ̂ Q,  Q = I − 11ᵀ/K.
4. Laplacian estimate:                      L̂ = (Σ̂⊥)†.
5. Multitask SGD:  W ← W − μ (∇̃J(W) + η L̂ W),  the gradient of
   Σ_k J_k(w_k) + (η/2) tr(Wᵀ L̂ W).

Steady-state SGD fluctuations add O(μ) to Σ̂ (for the element-wise regression
below exactly P·I with P = μσ_v²/(2 − 3μσ_u²)), so L̂ − L = O(μ) once M is large
enough that the sampling error of Σ̂ (O(√(K/M))) is below that bias.

Everything is a pure function of arrays; per-agent work is ``jax.vmap`` over
the agent axis and every SGD loop is a ``lax.scan``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


# ---------------------------------------------------------------------------
# Graphs and the GMRF.

def laplacian_pinv(laplacian):
    """L† of a connected graph's Laplacian (eigen-decomposition, null space 1 dropped)."""
    return pinv_off_ones(laplacian)


# ---------------------------------------------------------------------------
# Steps 2–4: covariance, projection off 1, pseudo-inverse.

def feature_covariance(w):
    """Σ̂ = W Wᵀ / M for W of shape (K, M): covariance across feature dimensions."""
    return w @ w.T / w.shape[1]


def centering_matrix(num_agents: int, dtype=jnp.float32):
    """Q = I − 11ᵀ/K, the projector onto the complement of the all-ones vector."""
    return jnp.eye(num_agents, dtype=dtype) - jnp.full((num_agents, num_agents),
                                                       1.0 / num_agents, dtype)


def project_off_ones(matrix):
    """Σ̂⊥ = Q Σ̂ Q."""
    q = centering_matrix(matrix.shape[0], matrix.dtype)
    return q @ matrix @ q


def pinv_off_ones(matrix, rcond: float | None = None):
    """Moore–Penrose pseudo-inverse of a symmetric PSD matrix whose null space holds 1.

    Computed as Q (Q S Q)† Q with an eigen-decomposition; eigenvalues at or below
    ``rcond · λ_max`` (default K · machine epsilon) are treated as zero, branch-free.
    """
    s = project_off_ones(matrix)
    s = 0.5 * (s + s.T)
    evals, evecs = jnp.linalg.eigh(s)
    if rcond is None:
        rcond = s.shape[0] * jnp.finfo(s.dtype).eps
    cutoff = rcond * jnp.max(jnp.abs(evals))
    big = evals > cutoff
    inv = jnp.where(big, 1.0 / jnp.where(big, evals, 1.0), 0.0)
    return project_off_ones((evecs * inv) @ evecs.T)


def estimate_laplacian(w, rcond: float | None = None):
    """Steps 2–4: L̂ = (Q (W Wᵀ/M) Q)† from stacked agent estimates W (K × M)."""
    return pinv_off_ones(feature_covariance(w), rcond)


def laplacian_error(estimate, truth):
    """Relative Frobenius error ‖L̂ − L‖_F / ‖L‖_F."""
    return jnp.linalg.norm(estimate - truth) / jnp.linalg.norm(truth)


def covariance_error(covariance, laplacian):
    """Relative Frobenius error ‖Q Σ̂ Q − L†‖_F / ‖L†‖_F."""
    target = laplacian_pinv(laplacian)
    return jnp.linalg.norm(project_off_ones(covariance) - target) / jnp.linalg.norm(target)


# ---------------------------------------------------------------------------
# Steps 1 and 5: the SGD recursions, for any per-agent stochastic gradient.

GradFn = Callable[[jax.Array, jax.Array], jax.Array]
"""``grad_fn(w_k, key_k) -> ∇̃J_k(w_k)`` for ONE agent; vmapped over agents by the
caller (agent-specific data is closed over, indexed by the agent axis of w)."""


def multitask_step(w, gradients, laplacian, step_size, coupling):
    """W ← W − μ (∇̃J(W) + η L W)   (step 5; ``coupling`` = η, L = 0 is step 1)."""
    return w - step_size * (gradients + coupling * (laplacian @ w))


def consensus_step(w, gradients, step_size):
    """Centralised consensus SGD: every agent takes the average gradient step."""
    return w - step_size * jnp.broadcast_to(jnp.mean(gradients, axis=0), w.shape)


class SGDHistory(NamedTuple):
    msd: jax.Array  # (num_steps,) (1/K) Σ_k ‖w_k − w_o,k‖² after each step


def run_sgd(agent_grad, w0, key, step_size, num_steps: int, laplacian=None,
            coupling=0.0, consensus=False, truth=None):
    """``num_steps`` of non-cooperative (L = None), multitask or consensus SGD.

    ``agent_grad(w, keys) -> (K, M)`` returns every agent's stochastic gradient
    (built with :func:`vmapped_gradient`).  Returns (W, history of the MSD when
    ``truth`` is given, else of zeros).
    """
    lap = jnp.zeros((w0.shape[0], w0.shape[0]), w0.dtype) if laplacian is None else laplacian

    def body(w, k):
        g = agent_grad(w, jax.random.split(k, w.shape[0]))
        w = consensus_step(w, g, step_size) if consensus else \
            multitask_step(w, g, lap, step_size, coupling)
        msd = (jnp.mean(jnp.sum((w - truth) ** 2, axis=1)) if truth is not None
               else jnp.zeros((), w.dtype))
        return w, msd

    w, msd = lax.scan(body, w0, jax.random.split(key, num_steps))
    return w, SGDHistory(msd)


def vmapped_gradient(grad_fn: Callable, agent_data):
    """Turn a one-agent ``grad_fn(w_k, key_k, data_k)`` into a function of (W, keys)."""
    return lambda w, keys: jax.vmap(grad_fn)(w, keys, agent_data)


def learned_graph_multitask(agent_grad, w0, key, step_size, num_steps: int,
                            coupling, rcond=None):
    """The whole strategy: non-cooperative SGD, L̂ from its iterate, multitask SGD.

    Both phases run ``num_steps`` steps; the multitask phase starts from the
    non-cooperative iterate.  Returns (W, L̂).
    """
    k1, k2 = jax.random.split(key)
    w_nc, _ = run_sgd(agent_grad, w0, k1, step_size, num_steps)
    lap = estimate_laplacian(w_nc, rcond)
    w, _ = run_sgd(agent_grad, w_nc, k2, step_size, num_steps, lap, coupling)
    return w, lap


# ---------------------------------------------------------------------------
# The synthetic streaming regression of the reproduction.

def elementwise_regression_grad(sigma_u: float, sigma_v: float):
    """One agent's LMS gradient for d = u ⊙ w_o + v, u ~ N(0, σ_u² I), v ~ N(0, σ_v² I).

    ∇̃J_k(w) = −u ⊙ (d − u ⊙ w), with fresh (u, v) from ``key`` at every call.
    Each feature is its own scalar regression, so the steady-state error is
    exactly uncorrelated across features and agents with variance
    P = μσ_v²/(2 − 3μσ_u²) (see :func:`steady_state_variance`), whatever M.
    """

    def grad(w, key, w_true):
        ku, kv = jax.random.split(key)
        u = sigma_u * jax.random.normal(ku, w.shape, w.dtype)
        d = u * w_true + sigma_v * jax.random.normal(kv, w.shape, w.dtype)
        return -u * (d - u * w)

    return grad


def dense_regression_grad(sigma_u: float, sigma_v: float):
    """One agent's LMS gradient for d = uᵀ w_o + v with u ~ N(0, σ_u² I_M) (scalar d)."""

    def grad(w, key, w_true):
        ku, kv = jax.random.split(key)
        u = sigma_u * jax.random.normal(ku, w.shape, w.dtype)
        d = u @ w_true + sigma_v * jax.random.normal(kv, (), w.dtype)
        return -u * (d - u @ w)

    return grad


def steady_state_variance(step_size, sigma_u, sigma_v):
    """P = μσ_v²/(2 − 3μσ_u²): steady-state error variance of scalar LMS, Gaussian u.

    From e_i = (1 − μu²) e_{i−1} − μ u v and E(1 − μu²)² = 1 − 2μσ_u² + 3μ²σ_u⁴.
    """
    return step_size * sigma_v**2 / (2.0 - 3.0 * step_size * sigma_u**2)


# ---------------------------------------------------------------------------
# Batch (finite-sample) version used by the comparison: full-batch gradient
# descent on per-task least squares, then the Laplacian-coupled problem.

def least_squares_grad(w, x, y):
    """∇ of (1/(2N)) ‖X w − y‖² for one task."""
    return x.T @ (x @ w - y) / x.shape[0]


def fit_learned_graph_regression(x, y, coupling, step_size=None, num_steps: int = 500,
                                 ridge: float = 1e-3):
    """Learned-graph multitask linear regression on per-task data x (K, N, M), y (K, N).

    Non-cooperative phase: gradient descent on each task's ridge-regularised
    least squares (vmapped).  Then L̂ = (Q W Wᵀ Q / M)† and gradient descent on
    Σ_k (1/(2N)) ‖X_k w_k − y_k‖² + (η/2) tr(Wᵀ L̂ W), started from the first
    phase.  Each phase runs ``num_steps`` steps.

    ``step_size`` μ, when given, is used in BOTH phases (the caller keeps it
    below 2/(λ_max(H) + η λ_max(L̂)) for the second one).  By default each phase
    takes the inverse of its own largest Hessian eigenvalue: 1/λ_max(H) with
    H = max_k X_kᵀX_k/N + ridge·I, then 1/(λ_max(H) + η λ_max(L̂)).
    Returns (W, L̂).
    """
    k, n, m = x.shape
    hess = jnp.einsum("kni,knj->kij", x, x) / n + ridge * jnp.eye(m, dtype=x.dtype)
    lmax = jnp.max(jnp.linalg.eigvalsh(hess))
    mu = 1.0 / lmax if step_size is None else step_size
    grad = jax.vmap(lambda w, xk, yk: least_squares_grad(w, xk, yk))

    def nc_body(w, _):
        return w - mu * (grad(w, x, y) + ridge * w), None

    w0 = jnp.zeros((k, m), x.dtype)
    w_nc, _ = lax.scan(nc_body, w0, None, length=num_steps)
    lap = estimate_laplacian(w_nc)
    lap_max = jnp.max(jnp.linalg.eigvalsh(lap))
    mu2 = 1.0 / (lmax + coupling * lap_max) if step_size is None else step_size

    def mt_body(w, _):
        return w - mu2 * (grad(w, x, y) + ridge * w + coupling * (lap @ w)), None

    w, _ = lax.scan(mt_body, w_nc, None, length=num_steps)
    return w, lap
