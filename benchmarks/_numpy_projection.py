"""A plain NumPy solver of the cross-learning projection, the baseline a NumPy user would write.

It does not use cljax.  For one instance it solves

    min Σ_t w_t ‖θ_t − a_t‖² + w_g ‖θ_g − a_g‖²   s.t. ‖θ_t − θ_g‖ ≤ ε

by minimising, over c = θ_g, the convex C¹ function

    F(c) = Σ_t w_t (‖a_t − c‖ − ε)₊² + w_g ‖c − a_g‖²

with semismooth Newton in parameter space (the Hessian αI + Σ_t d_t v_t v_tᵀ,
v_t = c − a_t, inverted by the Woodbury identity) and an Armijo backtracking
line search; then θ_t is the projection of a_t onto the ball B(c, ε).
One call handles one instance: batches are a Python loop over instances.
"""

from __future__ import annotations

import numpy as np

_ARMIJO = 1e-4
_MAX_HALVINGS = 40


def _objective(sq_dist, radii, weights):
    excess = np.maximum(np.sqrt(np.maximum(sq_dist, 0.0)) - radii, 0.0)
    return float(np.sum(weights * excess * excess))


def project_numpy(a_tasks, a_global, eps, task_weights=None, global_weight=1.0,
                  tol=None, max_iter=100):
    """Project one instance.  ``a_tasks``: (T, ...), ``a_global``: (...).

    Stops one Newton step after ‖∇F(c)‖ / (2 Σ w) ≤ tol × (spread of the points),
    as cljax does.  Returns ``(theta_tasks, theta_global, iterations, residual)``
    with the input shapes; ``residual`` is ‖∇F(c)‖ / (2 Σ w) at the returned c and
    ``iterations`` counts the Newton steps taken.
    """
    a_tasks = np.asarray(a_tasks)
    a_global = np.asarray(a_global)
    dtype = np.result_type(a_tasks, a_global)
    t = a_tasks.shape[0]
    points = np.concatenate([a_global.reshape(1, -1), a_tasks.reshape(t, -1)]).astype(
        dtype, copy=False)
    tw = np.ones(t) if task_weights is None else np.asarray(task_weights, float)
    weights = np.concatenate([[float(global_weight)], tw]).astype(dtype)
    total = float(np.sum(weights))
    if tol is None:
        tol = float(np.sqrt(np.finfo(dtype).eps))

    c = (weights @ points) / dtype.type(total)
    centred = points - c
    spread = float(np.sqrt(np.max(np.sum(centred * centred, axis=1))))
    del centred
    eps_eff = min(float(eps), 2.0 * spread)  # beyond the spread every ε is the same
    radii = np.concatenate([[0.0], np.full(t, eps_eff)]).astype(dtype)
    stop_at = tol * spread

    iterations = 0
    residual = np.inf
    polish = False  # like cljax: one more Newton step once the tolerance is met
    while True:
        v = c[None, :] - points                       # (n, S): c − a_j
        gram = v @ v.T                                # ⟨v_j, v_k⟩
        sq = np.maximum(np.diag(gram), 0.0)
        r = np.sqrt(sq)
        outside = r > radii
        r_out = np.where(outside, r, 1.0)
        rho = np.where(radii == 0, 1.0, np.where(outside, 1.0 - radii / r_out, 0.0))
        g = 2.0 * weights * rho                       # ∇F = Σ g_j v_j
        residual = float(np.sqrt(max(g @ gram @ g, 0.0))) / (2.0 * total)
        if polish or iterations >= max_iter:
            break
        polish = residual <= stop_at
        if residual == 0.0:
            break
        curv = np.where(outside & (radii > 0), 2.0 * weights * radii / r_out ** 3, 0.0)
        alpha = float(np.sum(g))
        # Newton direction Δ = −H⁻¹ ∇F = Σ β_j v_j  (Woodbury on H = αI + Vᵀ diag(curv) V)
        e = np.sqrt(curv)
        small = alpha * np.eye(len(g)) + e[:, None] * gram * e[None, :]
        y = np.linalg.solve(small, e * (gram @ g))
        beta = -(g - e * y) / alpha
        # Armijo line search on F(c + τΔ): ‖v_j + τΔ‖² = sq_j + 2τ p_j + τ² h
        p = gram @ beta
        h = max(float(beta @ p), 0.0)
        slope = float(g @ p)
        f0 = _objective(sq, radii, weights)
        tau = 1.0
        for _ in range(_MAX_HALVINGS):
            trial = _objective(sq + 2 * tau * p + tau * tau * h, radii, weights)
            if trial <= f0 + _ARMIJO * tau * slope:
                break
            tau *= 0.5
        else:
            break  # no decrease possible at this precision
        c = c + (tau * beta).astype(dtype) @ v
        iterations += 1

    v = points[1:] - c[None, :]                       # a_t − c
    dist = np.sqrt(np.sum(v * v, axis=1))  # pairwise summation (einsum is naive)
    scale = np.where(dist > eps_eff, eps_eff / np.where(dist > eps_eff, dist, 1.0), 1.0)
    theta = c[None, :] + scale[:, None].astype(dtype) * v
    return theta.reshape(a_tasks.shape), c.reshape(a_global.shape), iterations, residual
