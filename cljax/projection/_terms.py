"""The terms of the cross-learning projection, written once for every algorithm (DESIGN §2).

Points a_j, j = g, 1..T (row 0 is the global point a_g), weights w_j and radii
ε_j (ε_g = 0, ε_t = ε).  With θ_g = c fixed, θ_t is the ball projection of a_t
onto B(c, ε), so c minimises the convex C¹ function

    F(c) = Σ_j w_j (‖c − a_j‖ − ε_j)₊²                       (EUSIPCO eqs. 12–13)

with ∇F = Σ_j g_j v_j, g_j = 2 w_j ρ_j, v_j = c − a_j, ρ_j = (1 − ε_j/‖v_j‖)₊,
and generalised Hessian H = α I + Σ_j d_j v_j v_jᵀ, α = Σ_j g_j,
d_j = 2 w_j ε_j / ‖v_j‖³ [‖v_j‖ > ε_j].

Conventions: axis 0 indexes the points j; any trailing axes are batch axes that
broadcast (the path solver keeps its batch last), so ``radii`` and ``weights``
must broadcast against ``q`` (shape (n,) or (n, 1) or (n, B)).

Every algorithm (:mod:`cljax.projection._operator`, :mod:`._centre_newton`,
:mod:`._centre_path`) takes these functions from here: the distance terms,
F, the radius clip, the ball step, the Newton directions in Gram and in
parameter form, the exact line search and the two-task closed form.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cljax._src.tree import safe_sqrt


def clip_radius(eps, spread):
    """The radius actually used: min(ε, 2·spread), or min(ε, 1) when spread = 0.

    ``spread`` = max_j ‖a_j − m‖ over the points with w_j > 0 (m the weighted
    mean).  Beyond 2·spread no constraint is active (‖a_t − a_g‖ ≤ 2·spread), so
    the answer is unchanged; the clip keeps ∞ out of the arithmetic and its
    derivative in ε is then exactly 0.  When all points coincide any ε > 0 gives
    the same answer, and min(ε, 1) keeps ε = 0 distinct from ε > 0.
    """
    return jnp.minimum(eps, jnp.where(spread > 0, 2.0 * spread, 1.0))


def radii_of(eps, n: int, dtype):
    """(n,) radii ε_j: 0 for the global point (row 0), ε for the T tasks."""
    eps = jnp.asarray(eps, dtype)
    return jnp.concatenate([jnp.zeros((1,), dtype), jnp.full((n - 1,), 1.0, dtype) * eps])


def ball_scale(distance, radius):
    """min(1, radius / distance), branch-free and safe: the ball step factor.

    P_{B(c, r)}(x) = c + (x − c)·ball_scale(‖x − c‖, r).  Equal to 1 inside the
    ball (also for radius = inf) and 0 for radius = 0 (the ball is its centre,
    also at distance = 0), with finite values and gradients everywhere.
    """
    outside = distance > radius
    safe_d = jnp.where(outside, distance, 1.0)
    safe_r = jnp.where(outside, radius, 0.0)
    return jnp.where(outside, safe_r / safe_d, jnp.where(radius > 0, 1.0, 0.0))


def distance_terms(q, radii, weights):
    """Per-point terms from squared distances q_j = ‖c − a_j‖².

    Returns r_j, ρ_j = (r_j − ε_j)₊ / max(r_j, ε_j) (1 when ε_j = r_j = 0), the
    excess (r_j − ε_j)₊ and the curvature d_j = 2 w_j ε_j / r_j³ [r_j > ε_j].
    """
    r = safe_sqrt(q)
    excess = jnp.maximum(r - radii, 0.0)
    den = jnp.maximum(r, radii)
    rho = jnp.where(den > 0, excess / jnp.where(den > 0, den, 1.0), 1.0)
    outside = r > radii
    r_safe = jnp.where(outside, r, 1.0)
    # (ε/r)/r², not ε/r³: r³ underflows for r below ~1e-103 (float64), giving 0/0.
    curv = jnp.where(outside, 2.0 * weights * (radii / r_safe) / jnp.where(outside, q, 1.0), 0.0)
    return r, rho, excess, curv


def objective(q, radii, weights):
    """F = Σ_j w_j (‖c − a_j‖ − ε_j)₊², summed over axis 0."""
    _, _, excess, _ = distance_terms(q, radii, weights)
    return jnp.sum(weights * excess**2, axis=0)


def alpha_of(g, total_weight):
    """α = Σ_j g_j plus a rounding-level floor that keeps H invertible where α = 0."""
    return jnp.sum(g, axis=0) + jnp.finfo(g.dtype).eps * 2.0 * total_weight


class Search(NamedTuple):
    """F along the Newton ray c + τΔc: ‖c + τΔc − a_j‖² = q_j + 2τ p_j + τ² h."""

    q: jax.Array  # q_j = ‖c − a_j‖²
    p: jax.Array  # p_j = ⟨c − a_j, Δc⟩
    h: jax.Array  # ‖Δc‖²


def exact_line_search(search, radii, weights, bisections: int = 8):
    """τ ∈ [0, 1] minimising F(c + τΔc) (convex in τ): 1 if F still decreases there,
    else ``bisections`` bisections on the slope φ'(τ)/2 = Σ_j w_j ρ_j(τ) (p_j + τ h)."""
    q, p, h = search

    def slope(tau):
        _, rho, _, _ = distance_terms(q + 2.0 * tau * p + tau * tau * h, radii, weights)
        return jnp.sum(weights * rho * (p + tau * h), axis=0)

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        up = slope(mid) > 0
        return jnp.where(up, lo, mid), jnp.where(up, mid, hi)

    zero, one = jnp.zeros_like(h), jnp.ones_like(h)
    lo, hi = jax.lax.fori_loop(0, bisections, bisect, (zero, one), unroll=True)
    return jnp.where(slope(one) <= 0, one, 0.5 * (lo + hi))


def newton_gram(gram, radii, weights, total_weight, kappa=None):
    """Newton direction Δc = Σ_j β_j v_j of F at c, from inner products only.

    ``gram`` G_jk = ⟨y_j, y_k⟩ of rows y_j.  Without ``kappa``, v_j = y_j (G is
    P_jk = ⟨v_j, v_k⟩ itself); with ``kappa``, c = Σ_k κ_k y_k + the origin of
    the rows and v_j = c − a_j = Σ_k κ_k y_k − y_j, so
    P = G − Gκ 1ᵀ − 1 (Gκ)ᵀ + κᵀGκ, used only through matrix–vector products
    with G and one elementwise pass (P is never formed).

    Woodbury on H = αI + Σ_j d_j v_j v_jᵀ with E = diag(√d):
    β = −(g − E (αI + E P E)⁻¹ E P g) / α.  O(n³) (one LU factorisation), nothing
    per parameter.

    Returns β, the line-search terms, g and γ, the step in the rows:
    Δc = Σ_k γ_k y_k, γ = (Σβ) κ − β (β without ``kappa``); the terms' h is
    ‖Δc‖² = γᵀGγ, without cancellation (βᵀPβ would lose half the digits when
    Σβ_j v_j ≈ 0).
    """
    n = gram.shape[0]
    if kappa is None:
        gk, kgk = jnp.zeros((n,), gram.dtype), jnp.zeros((), gram.dtype)
    else:
        gk = gram @ kappa
        kgk = kappa @ gk

    def p_times(x):  # P x
        sx = jnp.sum(x)
        return gram @ x - gk * sx - (gk @ x) + kgk * sx

    q = jnp.diagonal(gram) - 2.0 * gk + kgk
    _, rho, _, curv = distance_terms(q, radii, weights)
    g = 2.0 * weights * rho
    alpha = alpha_of(g, total_weight)
    e = safe_sqrt(curv)  # curv is exactly 0 for inactive points: sqrt would give NaN gradients
    def inner():  # αI + EPE in one elementwise pass (LU does not need it symmetrised)
        m = (e[:, None] * e[None, :]) * (gram - (gk[:, None] + gk[None, :]) + kgk)
        return m + alpha * jnp.eye(n, dtype=gram.dtype)

    y = solve_inner(lambda x: alpha * x + e * p_times(e * x), alpha + e * e * q, inner,
                    e * p_times(g))
    beta = -(g - e * y) / alpha
    gb = gram @ beta
    sb = jnp.sum(beta)
    p = gb - gk * sb - (gk @ beta) + kgk * sb
    if kappa is None:
        gamma, h = beta, beta @ p
    else:
        gamma = sb * kappa - beta
        h = gamma @ (sb * gk - gb)
    return beta, Search(q, p, jnp.maximum(h, 0.0)), g, gamma


CG_MIN_SIZE = 128  # solve_inner: conjugate gradients first from this size on
CG_MAX_STEPS = 16


def solve_inner(matvec, diagonal, matrix, b):
    """m⁻¹b for the symmetric positive-definite m = αI + EPE (n, n) of :func:`newton_gram`,
    given as ``matvec`` (x ↦ m x), its ``diagonal`` and ``matrix()`` (forms m).

    Small n: LU of ``matrix()``.  From ``CG_MIN_SIZE`` on: Jacobi-preconditioned
    conjugate gradients (at most ``CG_MAX_STEPS`` products with m, stopping at a
    relative residual of machine-ε^(2/3)); only if the true residual b − m x is not
    that small is m formed and solved by LU.  m is often well conditioned there (α
    large against EPE: every point far outside its ball), and then a few
    matrix–vector products replace forming m and an O(n³) factorisation whose
    pivoting is a sequential loop of n steps on CPU.  Derivatives go through
    ``lax.custom_linear_solve`` (the same solver for the tangent), not through the
    iterations.
    """
    n = b.shape[0]
    if n < CG_MIN_SIZE:
        return jnp.linalg.solve(matrix(), b)
    tol = jnp.finfo(b.dtype).eps ** (2.0 / 3.0)
    inv_diag = 1.0 / diagonal  # ≥ α > 0

    def solve(matvec, rhs):
        limit = (tol * tol) * (rhs @ rhs)

        def cond(state):
            k, _, r, _, _ = state
            return (k < CG_MAX_STEPS) & (r @ r > limit)

        def body(state):
            k, x, r, d, rz = state
            md = matvec(d)
            dmd = d @ md
            a = jnp.where(dmd > 0, rz / jnp.where(dmd > 0, dmd, 1.0), 0.0)
            x, r = x + a * d, r - a * md
            z = inv_diag * r
            rz_new = r @ z
            d = z + jnp.where(rz > 0, rz_new / jnp.where(rz > 0, rz, 1.0), 0.0) * d
            return k + 1, x, r, d, rz_new

        z = inv_diag * rhs
        _, x, _, _, _ = jax.lax.while_loop(cond, body, (0, jnp.zeros_like(rhs), rhs, z, rhs @ z))
        r = rhs - matvec(x)
        return jax.lax.cond(r @ r <= limit, lambda: x, lambda: jnp.linalg.solve(matrix(), rhs))

    return jax.lax.custom_linear_solve(matvec, b, solve, symmetric=True)


def solve_spd(h, b):
    """x = h⁻¹ b for small symmetric positive-definite h (d, d, *B), b (d, *B).

    Closed form for d ≤ 2; batch axes trailing (or none).
    """
    d = b.shape[0]
    if d == 1:
        return b / h[0, 0]
    if d == 2:
        det = h[0, 0] * h[1, 1] - h[0, 1] * h[0, 1]
        return jnp.stack([h[1, 1] * b[0] - h[0, 1] * b[1], h[0, 0] * b[1] - h[0, 1] * b[0]]) / det
    if b.ndim == 1:
        return jax.scipy.linalg.solve(h, b, assume_a="pos")
    x = jnp.linalg.solve(jnp.moveaxis(h, (0, 1), (-2, -1)), jnp.moveaxis(b, 0, -1)[..., None])
    return jnp.moveaxis(x[..., 0], -1, 0)


def newton_parameter(v, radii, weights, total_weight):
    """Newton step Δc = −H⁻¹∇F held in parameter space, from v_j = c − a_j (n, S, *B).

    H = αI + Σ_j d_j v_j v_jᵀ is S × S: O(n S² + S³), for S small.  Returns
    Δc (S, *B), the line-search terms, ∇F (S, *B) and F.
    """
    q = jnp.sum(v * v, axis=1)
    _, rho, excess, curv = distance_terms(q, radii, weights)
    g = 2.0 * weights * rho
    grad = jnp.sum(g[:, None] * v, axis=0)
    alpha = alpha_of(g, total_weight)
    s = v.shape[1]
    cv = curv[:, None] * v
    if s <= 4:  # written out: a few fused elementwise sums, batch axes kept last
        entry = {(i, k): jnp.sum(cv[:, i] * v[:, k], axis=0)
                 for i in range(s) for k in range(i, s)}
        hess = jnp.stack([jnp.stack([entry[min(i, k), max(i, k)] + (alpha if i == k else 0.0)
                                     for k in range(s)]) for i in range(s)])
    else:
        eye = jnp.eye(s, dtype=v.dtype).reshape((s, s) + (1,) * (v.ndim - 2))
        hess = jnp.einsum("ji...,jk...->ik...", cv, v) + alpha * eye
    step = -solve_spd(hess, grad)
    p = jnp.sum(v * step[None], axis=1)
    search = Search(q, p, jnp.sum(step * step, axis=0))
    return step, search, grad, jnp.sum(weights * excess**2, axis=0)


def pair_point(points, weights, radius, q):
    """The two-active-task solution for the tasks farthest from c (w_g = 0).

    When only tasks i, j are active at the optimum, c lies on their segment with
    w_i (r_i − ε) = w_j (r_j − ε), r_i + r_j = D = ‖a_i − a_j‖:
    r_i = (w_j D + (w_i − w_j) ε) / (w_i + w_j).  There F is nearly flat across
    the segment and Newton converges only linearly, so the closed form is tried.
    ``points`` (T, S) are the task points only, ``q`` (T,) their ‖c − a_t‖².
    """
    i = jnp.argmax(q)
    j = jnp.argmax(jnp.where(jnp.arange(q.shape[0]) == i, -jnp.inf, q))
    ai, aj, wi, wj = points[i], points[j], weights[i], weights[j]
    dist = safe_sqrt(jnp.sum((aj - ai) ** 2, axis=0))
    ri = (wj * dist + (wi - wj) * radius) / (wi + wj)
    return ai + jnp.where(dist > 0, ri / jnp.where(dist > 0, dist, 1.0), 0.0) * (aj - ai)
