"""Seeded multi-task benchmark problems shared by every method (``cljax compare``).

Every problem gives per-task training data (x: (T, N, p), y: (T, N) or (T, N, d))
and a test set (x_test, f_test) where f_test is the *noiseless* regression
function, so the score, (1/T) Σ_t mean_i (f̂_t(x_ti) − f_t(x_ti))², is the
excess risk over the noise (the parameter MSE for Gaussian means).

* ``gaussian_means``: y_tn = θ*_t + σ η, centres ±μ e_j in d = 2 (the paper's
  Example 2 for T = 4); x is a dummy (T, N, 1) array of zeros.
* ``graph_linear``: linear regression, w_t = w̄ + w_o,t with W_o ~ N(0, L† ⊗ I_M)
  from a random graph's GMRF (arXiv 2510.10570), x ~ N(0, I_M).
* ``heterogeneous_nonlinear``: covariate shift and posterior drift
  (:func:`heterogeneous_regression`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cljax.methods import check_task_data


class TaskData(NamedTuple):
    """Per-task data with a leading task axis: x (T, N, p), y (T, N) or (T, N, d)."""

    x: jax.Array
    y: jax.Array


class Problem(NamedTuple):
    train: TaskData
    x_test: jax.Array
    f_test: jax.Array


def gaussian_means(key, num_tasks=4, num_samples=5, sigma=2.0, mu=2.0, dim=2,
                   num_test=1) -> Problem:
    """Gaussian means: task t has centre μ·(±e_{j}) cycling through ±e_1, ±e_2, ...

    For T = 4, d = 2 these are the paper's Example 2 centres (μ,0), (−μ,0), (0,μ), (0,−μ).
    """
    t = jnp.arange(num_tasks)
    axis = (t // 2) % dim
    sign = jnp.where(t % 2 == 0, 1.0, -1.0)
    theta = mu * sign[:, None] * jax.nn.one_hot(axis, dim)
    y = theta[:, None, :] + sigma * jax.random.normal(key, (num_tasks, num_samples, dim))
    x = jnp.zeros((num_tasks, num_samples, 1))
    x_test = jnp.zeros((num_tasks, num_test, 1))
    f_test = jnp.broadcast_to(theta[:, None, :], (num_tasks, num_test, dim))
    return Problem(TaskData(x, y), x_test, f_test)


def graph_linear(key, num_tasks=10, num_samples=20, num_features=10, noise=1.0,
                 num_test=200, edge_probability=0.3) -> Problem:
    """Multi-task linear regression with graph-structured task parameters."""
    kl, kw, kb, kx, ke, kt = jax.random.split(key, 6)
    lap = random_graph_laplacian(kl, num_tasks, edge_probability)
    w = jax.random.normal(kb, (num_features,)) + sample_gmrf(kw, lap, num_features)
    x = jax.random.normal(kx, (num_tasks, num_samples, num_features))
    y = jnp.einsum("tnp,tp->tn", x, w) + noise * jax.random.normal(ke, x.shape[:2])
    x_test = jax.random.normal(kt, (num_tasks, num_test, num_features))
    return Problem(TaskData(x, y), x_test, jnp.einsum("tnp,tp->tn", x_test, w))


def heterogeneous_nonlinear(key, num_tasks=6, num_samples=30, num_features=5,
                            num_test=200) -> Problem:
    """Nonlinear regression with covariate shift and posterior drift."""
    k_task, k_train, k_test = jax.random.split(key, 3)
    train = heterogeneous_regression(k_train, num_tasks, num_samples, num_features,
                                     task_key=k_task)
    test = heterogeneous_regression(k_test, num_tasks, num_test, num_features, task_key=k_task)
    return Problem(TaskData(train.x, train.y), test.x, test.f)


BENCHMARKS = {
    "gaussian_means": (gaussian_means, "means"),
    "graph_linear": (graph_linear, "linear"),
    "heterogeneous_nonlinear": (heterogeneous_nonlinear, "nonlinear"),
}
"""name → (generator(key, num_tasks=..., num_samples=...), kind)."""


def excess_risk(prediction, f_test):
    """(1/T) Σ_t mean_i ‖f̂_t(x_ti) − f_t(x_ti)‖²."""
    sq = (prediction - f_test) ** 2
    if sq.ndim == 3:
        sq = jnp.sum(sq, axis=-1)
    return jnp.mean(sq)


# ---------------------------------------------------------------------------
# Generators: graphs and their GMRF (arXiv 2510.10570), and the dual-encoder design.

def random_graph_laplacian(key, num_agents: int, edge_probability: float = 0.3, dtype=None):
    """Laplacian L = D − A of an Erdős–Rényi graph G(K, p) with unit weights.

    A ring 0–1–…–(K−1)–0 is added so the graph is always connected (L has a
    one-dimensional null space spanned by 1).  ``dtype`` defaults to JAX's
    default float (float64 under ``jax_enable_x64``).
    """
    k = num_agents
    dtype = jnp.result_type(float) if dtype is None else dtype
    upper = jax.random.bernoulli(key, edge_probability, (k, k))
    adjacency = jnp.triu(upper, 1)
    adjacency = (adjacency | adjacency.T).astype(dtype)
    eye = jnp.eye(k, dtype=dtype)
    ring = jnp.roll(eye, 1, axis=1)
    ring = jnp.maximum(ring, ring.T) * (k > 2) + (jnp.ones((k, k), dtype) - eye) * (k == 2)
    adjacency = jnp.maximum(adjacency, ring)
    return jnp.diag(jnp.sum(adjacency, axis=1)) - adjacency


def sample_gmrf(key, laplacian, num_features: int, exact: bool = False):
    """W_o (K × M) with i.i.d. columns w^(m) ~ N(0, L†) (DESIGN §7; paper's GMRF).

    ``exact=True`` whitens the draw so that W_o W_oᵀ / M = L† exactly (the M → ∞
    limit of the covariance, used to isolate the O(μ) error of the SGD
    estimates from the O(√(K/M)) sampling error); needs M ≥ K − 1.
    """
    evals, evecs = jnp.linalg.eigh(laplacian)
    k = laplacian.shape[0]
    keep = jnp.arange(k) > 0  # eigenvalue 0 (the ones direction) is the smallest
    scale = jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, evals, 1.0)), 0.0)
    z = jax.random.normal(key, (k, num_features), laplacian.dtype)
    if exact:
        if num_features < k - 1:
            raise ValueError(f"exact=True needs num_features >= K - 1 = {k - 1}, "
                             f"got {num_features}")
        # rows 1..K-1 orthogonal with squared norm M (row 0 is zeroed by ``scale``)
        u, _, vt = jnp.linalg.svd(z[1:], full_matrices=False)
        z = z.at[1:].set(jnp.sqrt(num_features) * (u @ vt))
    return evecs @ (scale[:, None] * z)


class HeterogeneousRegression(NamedTuple):
    x: jax.Array  # (T, N, p)
    y: jax.Array  # (T, N)
    f: jax.Array  # (T, N) noiseless regression function


def heterogeneous_regression(key, num_tasks=6, num_samples=30, num_features=5, noise=0.3,
                             shift=1.0, drift=1.5, scale_drift=0.5, task_key=None):
    """Tasks with covariate shift (x_r ~ N(m_r, I)) and posterior drift.

    f_r(x) = (1 + scale_drift · z_r) g(x) + drift · tanh(c_rᵀ x),
    g(x) = 2 sin(aᵀx) + 0.5 (bᵀx)²/p, with a ~ N(0, I/p), b ~ N(0, I) shared
    by all tasks, z_r ~ N(0, 1), c_r ~ N(0, 4I/p), and m_r = shift · u_r with
    u_r uniform on the unit sphere (so ‖m_r‖ = shift).  y = f + noise·ε, ε ~ N(0, 1).
    ``task_key`` fixes the task structure (so train and test share it); the
    samples come from ``key``.
    """
    task_key = key if task_key is None else task_key
    ka, kb, kz, kc, km = jax.random.split(task_key, 5)
    p = num_features
    a = jax.random.normal(ka, (p,)) / jnp.sqrt(p)
    b = jax.random.normal(kb, (p,))
    z = jax.random.normal(kz, (num_tasks,))
    c = jax.random.normal(kc, (num_tasks, p)) / jnp.sqrt(p) * 2.0
    m = jax.random.normal(km, (num_tasks, p))
    m = shift * m / jnp.linalg.norm(m, axis=1, keepdims=True)
    kx, ke = jax.random.split(key)
    x = m[:, None, :] + jax.random.normal(kx, (num_tasks, num_samples, p))
    g = 2.0 * jnp.sin(x @ a) + 0.5 * (x @ b) ** 2 / p
    f = (1.0 + scale_drift * z[:, None]) * g + drift * jnp.tanh(jnp.einsum("tnp,tp->tn", x, c))
    y = f + noise * jax.random.normal(ke, f.shape)
    return HeterogeneousRegression(x, y, f)
