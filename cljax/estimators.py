"""Estimators for the multi-task Gaussian mean model (paper §III; DESIGN §5).

Model: y_tn = θ*_t + η_tn, η ~ N(0, σ² I).  With squared loss the cross-learning
problem P_CL,  min (1/T) Σ_t (1/N_t) Σ_n ‖y_tn − θ_t‖²  s.t. ‖θ_t − θ_g‖ ≤ ε,
reduces to the projection P̄_CL of the sample means θ̂_t (w_g = 0), because
(1/N_t) Σ_n ‖y_tn − θ‖² = ‖θ − θ̂_t‖² + const.

All three estimators take the per-task sample means as a task tree (leading task
axis T) and return a task tree of estimates.  Optional ``task_weights`` w_t
replace the paper's equal weights 1/T (e.g. w_t = N_t pools the data).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from cljax import checks
from cljax.projection import project_cross_learning
from cljax.tree import broadcast_global, per_task_sq_norm, sub

PyTree = Any


def sample_means(samples, mask=None):
    """Per-task sample means θ̂_t of samples shaped (T, N, ...).

    ``mask`` (T, N) of 0/1 marks the samples present, for unequal N_t.
    """
    samples = jnp.asarray(samples)
    if samples.ndim < 2:
        raise ValueError(f"samples must have shape (T, N, ...), got {samples.shape}")
    if mask is None:
        return jnp.mean(samples, axis=1)
    mask = jnp.asarray(mask, samples.dtype)
    if mask.shape != samples.shape[:2]:
        raise ValueError(f"mask must have shape {samples.shape[:2]}, got {mask.shape}")
    counts = jnp.sum(mask, axis=1)
    expand = mask.reshape(mask.shape + (1,) * (samples.ndim - 2))
    return jnp.sum(samples * expand, axis=1) / counts.reshape((-1,) + (1,) * (samples.ndim - 2))


def separate(task_means: PyTree) -> PyTree:
    """P_S: each task keeps its own sample mean, θ̂_t."""
    checks.task_count(task_means, "task_means")
    return task_means


def consensus(task_means: PyTree, task_weights=None) -> PyTree:
    """P_C (paper's consensus): one θ = Σ_t w_t θ̂_t / Σ_t w_t for every task."""
    t = checks.task_count(task_means, "task_means")
    checks.check_float_leaves(task_means, "task_means")
    if task_weights is None:
        task_weights = jnp.ones((t,))
    task_weights = checks.check_weights(jnp.asarray(task_weights), t)

    def pooled(leaf):
        w = task_weights.astype(leaf.dtype).reshape((t,) + (1,) * (leaf.ndim - 1))
        return jnp.sum(w * leaf, axis=0) / jnp.sum(w)

    return broadcast_global(jax.tree_util.tree_map(pooled, task_means), t)


def cross_learning(task_means: PyTree, eps, task_weights=None, *, method="dual",
                   tol=None, max_iter=100) -> PyTree:
    """P̄_CL: the projection of the sample means onto {‖θ_t − θ_g‖ ≤ ε} (w_g = 0).

    ε = 0 gives :func:`consensus`; ε ≥ max_t ‖θ̂_t − θ_g‖ gives :func:`separate`.
    """
    return project_cross_learning(
        task_means, None, eps, task_weights=task_weights, global_weight=0.0,
        method=method, tol=tol, max_iter=max_iter).task_params


def mean_squared_error(estimates: PyTree, truth: PyTree):
    """E = (1/T) Σ_t ‖estimate_t − θ*_t‖² (paper's E_S, E_C, E_CL)."""
    return jnp.mean(per_task_sq_norm(sub(estimates, truth)))
