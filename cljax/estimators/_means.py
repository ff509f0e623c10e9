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
import numpy as np

from cljax._src import checks as checks
from cljax.projection._operator import project_cross_learning
from cljax._src.tree import broadcast_global, per_task_sq_norm, sub

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


def james_stein(task_means: PyTree, noise_variances) -> PyTree:
    """Positive-part James–Stein toward the (precision-weighted) grand mean.

    With y_t the sample means, τ_t² = Var noise of y_t per coordinate (σ²/N_t),
    S numbers per task and m = Σ_t y_t/τ_t² / Σ_t 1/τ_t²:

        θ̂_t = m + (1 − ((T − 1) S − 2) / Σ_t ‖y_t − m‖²/τ_t²)₊ (y_t − m).

    For equal τ_t this is the classical estimator shrinking toward a
    d-dimensional subspace (Efron–Morris), which dominates the separate
    estimator when (T − 1) S ≥ 3.  Unequal τ_t: the same rule in the whitened
    coordinates y_t/τ_t (it dominates there, for the τ-weighted loss).
    With (T − 1) S ≤ 2 the factor is 1 and θ̂ = y (nothing to gain).
    """
    t = checks.task_count(task_means, "task_means")
    checks.check_float_leaves(task_means, "task_means")
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(task_means))
    var = jnp.broadcast_to(jnp.asarray(noise_variances, dtype), (t,))
    var = checks.check_weights(var, t, name="noise_variances")
    precision = 1.0 / var
    size = sum(int(np.prod(leaf.shape[1:])) for leaf in jax.tree_util.tree_leaves(task_means))

    def pooled(leaf):
        w = precision.reshape((t,) + (1,) * (leaf.ndim - 1))
        return jnp.sum(w * leaf, axis=0) / jnp.sum(precision)

    centre = broadcast_global(jax.tree_util.tree_map(pooled, task_means), t)
    resid = sub(task_means, centre)
    stat = jnp.sum(per_task_sq_norm(resid) * precision)
    const = max((t - 1) * size - 2, 0)
    factor = jnp.maximum(1.0 - const / jnp.where(stat > 0, stat, 1.0), 0.0)
    factor = jnp.where(stat > 0, factor, 0.0)
    return jax.tree_util.tree_map(lambda c, r: c + factor * r, centre, resid)
