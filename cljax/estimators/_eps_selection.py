"""Choosing ε without knowing θ* (the paper's open question 2): SURE and K-fold CV.

Gaussian model: the sample means y_t ~ N(θ*_t, τ_t² I_d), τ_t² = σ²/N_t.

**SURE** (Stein 1981).  For a weakly differentiable estimator θ̂(y), with
div_t = tr ∂θ̂_t/∂y_t,

    SURE(ε) = (1/T) Σ_t [‖θ̂_t − y_t‖² − d τ_t² + 2 τ_t² div_t]

is an unbiased estimate of E_CL(ε) = (1/T) Σ_t ‖θ̂_t − θ*_t‖².  The
cross-learning estimator is a Euclidean projection (P̄_CL), so it is
1-Lipschitz and SURE applies.  The divergence comes exactly from the implicit
function theorem (:func:`cljax.centre_newton.projection_divergence`), or by
forward-mode autodiff through the projection, whose derivatives are implicit
(:func:`divergence_autodiff`); the tests check both against finite differences.

**K-fold cross-validation** (N_t ≥ 2).  Sample i of task t goes to fold i mod K.
For fold k the estimator is fitted on the other folds' sample means and scored
on the held-out samples: CV(ε) = Σ_k Σ_t Σ_{i∈k} ‖y_ti − θ̂_t^{(−k)}(ε)‖² / Σ counts.
Everything is vmapped over folds and over the ε grid.

Both functions return a curve over the ε grid; ε̂ = argmin of the curve.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cljax.projection._centre_newton import (DEFAULT_ITERATIONS, project_centre_newton,
                                 projection_divergence)


def sure(means, theta, divergence, noise_variances):
    """SURE of the estimate ``theta`` (T, d) of the means ``means`` (T, d).

    ``divergence`` (T,) holds div_t; ``noise_variances`` (T,) holds τ_t².
    """
    d = means.shape[1]
    fit = jnp.sum((theta - means) ** 2, axis=1)
    return jnp.mean(fit - d * noise_variances + 2.0 * noise_variances * divergence)


def sure_curve(means, eps_grid, noise_variances, weights=None, *,
               iterations: int = DEFAULT_ITERATIONS):
    """SURE(ε) of cross-learning at every ε of ``eps_grid`` (vmapped), exact divergence."""
    noise_variances = jnp.broadcast_to(jnp.asarray(noise_variances, means.dtype),
                                       means.shape[:1])

    def at(eps):
        proj = project_centre_newton(means, eps, weights, iterations=iterations)
        div = projection_divergence(means, proj.centre, eps, weights)
        return sure(means, proj.task_params, div, noise_variances)

    return jax.vmap(at)(jnp.asarray(eps_grid, means.dtype))


def divergence_autodiff(means, eps, weights=None):
    """div_t = tr ∂θ̂_t/∂y_t by forward-mode autodiff through the projection.

    :func:`cljax.projection.project_centre_newton` has implicit derivatives
    (one Newton step from the solution), so this is exact up to the solver's
    accuracy; O(T d) Jacobian-vector products, so meant for checks and small T d.
    """
    t = means.shape[0]
    jac = jax.jacfwd(lambda y: project_centre_newton(y, eps, weights).task_params)(means)
    idx = jnp.arange(t)
    return jnp.trace(jac[idx, :, idx, :], axis1=1, axis2=2)


def fold_masks(mask, folds: int):
    """(K, T, N) 0/1 held-out masks: sample i of a task goes to fold i mod K."""
    n = mask.shape[1]
    fold_of = jnp.arange(n) % folds
    return (fold_of[None, None, :] == jnp.arange(folds)[:, None, None]) * mask[None]


def cv_curve(samples, mask, eps_grid, folds: int, weights=None, *,
             iterations: int = DEFAULT_ITERATIONS):
    """K-fold CV error of cross-learning at every ε: samples (T, N, d), mask (T, N).

    Every task needs at least 2 samples (so each fold leaves one to fit on) and
    ``folds`` ≥ 2.  Returns CV(ε), the mean held-out squared error per sample.
    """
    if not (isinstance(folds, int) and folds >= 2):
        raise ValueError(f"folds must be an int >= 2, got {folds!r}")
    mask = jnp.asarray(mask, samples.dtype)
    held = fold_masks(mask, folds)  # (K, T, N)
    eps_grid = jnp.asarray(eps_grid, samples.dtype)

    def one_fold(out):
        train = mask - out
        counts = jnp.sum(train, axis=1)
        means = jnp.einsum("tn,tnd->td", train, samples) / counts[:, None]

        def at(eps):
            theta = project_centre_newton(means, eps, weights, iterations=iterations).task_params
            sq = jnp.sum((samples - theta[:, None, :]) ** 2, axis=2)
            return jnp.sum(sq * out)

        return jax.vmap(at)(eps_grid)

    totals = jax.vmap(one_fold)(held)  # (K, E)
    return jnp.sum(totals, axis=0) / jnp.sum(mask)


def select(curve, eps_grid):
    """ε̂ = the grid point minimising ``curve`` (first one on ties), and its index."""
    index = jnp.argmin(curve)
    return jnp.asarray(eps_grid)[index], index
