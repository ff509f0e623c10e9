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
  (:func:`cljax.dual_encoder.heterogeneous_regression`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cljax import learned_graph as lg
from cljax.checks import task_count
from cljax.dual_encoder import heterogeneous_regression


class TaskData(NamedTuple):
    """Per-task data with a leading task axis: x (T, N, p), y (T, N) or (T, N, d)."""

    x: jax.Array
    y: jax.Array


class Problem(NamedTuple):
    train: TaskData
    x_test: jax.Array
    f_test: jax.Array


def check_task_data(x, y, name: str = "data") -> int:
    """Validate per-task arrays; returns T.  Mismatched task counts are named."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 3:
        raise ValueError(f"{name}.x must have shape (T, N, p), got {x.shape}")
    if y.ndim not in (2, 3):
        raise ValueError(f"{name}.y must have shape (T, N) or (T, N, d), got {y.shape}")
    t = task_count({"x": x, "y": y}, name)  # T agrees across x and y, T >= 1
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{name}: x has N = {x.shape[1]} samples per task but y has "
                         f"N = {y.shape[1]}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} needs at least one sample per task, got x {x.shape}")
    return t


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
    lap = lg.random_graph_laplacian(kl, num_tasks, edge_probability)
    w = jax.random.normal(kb, (num_features,)) + lg.sample_gmrf(kw, lap, num_features)
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
